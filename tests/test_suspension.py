"""Suspension: staff can sign in and read; every write is refused clearly; reactivation restores."""
import pytest

from tenants.services import agency_reactivate, agency_suspend

from .conftest import password_for

pytestmark = pytest.mark.django_db


def test_suspended_agency_reads_but_refuses_writes(api_client, page_client, alpha):
    api = api_client("alpha", "admin")
    assert api.patch("/api/v1/agency/", {"currency": "EUR"}, format="json").status_code == 200  # host now cached
    agency_suspend(agency=alpha, actor="test")
    assert api.get("/api/v1/staff/").status_code == 200
    response = api.patch("/api/v1/agency/", {"currency": "USD"}, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "agency_read_only"
    assert "suspended" in response.json()["error"]["message"]

    page = page_client("alpha", "admin")
    assert page.get("/staff/").status_code == 200
    response = page.post("/staff/invite/", {"full_name": "X", "email": "x@alpha.test", "role": "sales", "language": "en"},
                         HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 403 and b"suspended" in response.content
    assert b"This agency is suspended" in page.get("/", HTTP_ACCEPT_LANGUAGE="en").content  # the banner

    agency_reactivate(agency=alpha, actor="test")
    assert api.patch("/api/v1/agency/", {"currency": "USD"}, format="json").status_code == 200


def test_staff_of_a_suspended_agency_can_still_sign_in(page_client, charlie):
    assert charlie.status == "suspended"
    client = page_client(None, on="charlie.localhost")
    response = client.post("/accounts/login/", {"username": "sales@charlie.test",
                                                "password": password_for("charlie", "sales")})
    assert response.status_code == 302 and client.session.get("_auth_user_id")


def test_operator_suspends_and_reactivates_from_the_console(operator_client, alpha):
    response = operator_client.post("/agencies/alpha/", {"action": "suspend", "note": "unpaid"})
    assert response.status_code == 302
    alpha.refresh_from_db()
    assert alpha.status == "suspended"
    operator_client.post("/api/operator/agencies/alpha/reactivate/", {}, format="json")
    alpha.refresh_from_db()
    assert alpha.status == "trial"
    page = operator_client.get("/agencies/alpha/")
    assert b"unpaid" in page.content  # recorded in the history


def test_a_deleted_agencys_host_is_gone_at_once_though_it_was_cached():
    from tenants.models import Agency
    from tenants.services import agency_delete, agency_onboard

    agency = agency_onboard(name="Short-lived", slug="brief", plan="starter", admin_email="a@brief.test",
                            actor="test").agency
    try:
        from django.test import Client

        client = Client(HTTP_HOST="brief.localhost")
        assert client.get("/accounts/login/").status_code == 200  # cached now
        agency_delete(agency=agency, confirm_slug="brief", actor="test")
        assert client.get("/accounts/login/").status_code == 404
    finally:
        if existing := Agency.objects.filter(slug="brief").first():
            agency_delete(agency=existing, confirm_slug="brief", actor="test")


def test_a_cancelled_agency_says_cancelled_not_suspended(api_client, page_client, alpha):
    from tenants.models import Agency
    from caravan.tenancy.middleware import forget_hosts

    Agency.objects.filter(pk=alpha.pk).update(status=Agency.Status.CANCELLED)
    forget_hosts(["alpha.localhost"])
    page = page_client("alpha", "admin")
    home = page.get("/", HTTP_ACCEPT_LANGUAGE="en").content
    assert b"subscription is cancelled" in home and b"is suspended" not in home
    response = api_client("alpha", "admin").patch("/api/v1/agency/", {"currency": "USD"}, format="json")
    assert response.status_code == 403 and "cancelled" in response.json()["error"]["message"]


def test_work_staff_queued_before_a_suspension_writes_nothing_after_it(alpha, mailbox, settings, tmp_path):
    """The read-only rule holds for queued work too: an import waiting in the queue and a campaign
    being sent stop when the agency is suspended, and the campaign goes on once it is active again."""
    from django.core.files.storage import storages
    from django_tenants.utils import tenant_context

    from crm.customers import imports
    from crm.campaigns import sending
    from crm.campaigns.models import Campaign
    from crm.customers.models import Customer
    from crm.customers.tasks import import_customers
    from tests.test_campaigns import people, started
    from tests.test_crm_import import upload

    settings.MEDIA_ROOT = str(tmp_path / "media")
    storages["default"].__dict__.pop("relative_media_root", None)
    try:
        job = upload(alpha, "姓名,手机\n暂停前,13900000001\n".encode(), "queued.csv")
        with tenant_context(alpha):
            imports.job_start(job, mapping=job.mapping)
            people(3)
            campaign = started()
        agency_suspend(agency=alpha, actor="test")
        with tenant_context(alpha):
            assert import_customers.apply(args=[job.pk]).get()["refused"] == "read-only"
            job.refresh_from_db()
            assert job.status == "failed" and "read-only" in job.errors[0]["message"]
            assert not Customer.objects.filter(name="暂停前").exists()
            assert sending.campaign_send(campaign_id=campaign.pk)["paused"] == "read-only"
            assert mailbox == [] and Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING
        agency_reactivate(agency=alpha, actor="test")
        with tenant_context(alpha):
            assert sending.campaign_send(campaign_id=campaign.pk)["sent"] == 3 and len(mailbox) == 3
    finally:
        storages["default"].__dict__.pop("relative_media_root", None)
