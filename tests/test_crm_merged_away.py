"""A write to a merged-away customer (issue 19): the service, the page and the API refuse it alike,
naming the survivor, and write nothing. One rule, in crm.customers.services (``customer_live``,
``MergedAway``); a page shows the message on its form (400; the bulk action as a message), the API
answers 409 with ``survivor``."""
from datetime import date
from types import SimpleNamespace

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django_tenants.utils import tenant_context

from crm.care import services as care_services
from crm.care.models import Complaint
from crm.customers import services
from crm.customers.models import (ChangeLog, Contact, Customer, Employment, FamilyDate, LoyaltyMembership, Preferences,
                                  TravelDocument)
from crm.pipeline import services as pipeline_services
from crm.pipeline.models import Opportunity
from crm.trips import services as trips_services
from crm.trips.models import Trip

from .conftest import staff

pytestmark = pytest.mark.django_db
API = "/api/v1"


@pytest.fixture
def merged(alpha):
    """王 芳 merged into 王芳, 阿尔法公司 into 阿尔法 (companies), and 李雷, a live person."""
    with tenant_context(alpha):
        admin = staff(alpha, "admin")
        keep = services.customer_create(actor=None, via="page", name="王芳", phones=["13800138000"])
        drop = services.customer_create(actor=None, via="page", name="王 芳", phones=["13900139000"])
        company = services.customer_create(actor=None, via="page", kind="company", name="阿尔法")
        gone = services.customer_create(actor=None, via="page", kind="company", name="阿尔法公司")
        services.customer_merge(actor=admin, keep=keep, drop=drop)
        services.customer_merge(actor=admin, keep=company, drop=gone)
        other = services.customer_create(actor=None, via="page", name="李雷", owner=staff(alpha, "sales"))
        drop.refresh_from_db()
        gone.refresh_from_db()
    connection.set_schema_to_public()
    return SimpleNamespace(keep=keep, drop=drop, company=company, gone=gone, other=other)


def written(alpha) -> tuple:
    """Everything a refused write must leave as it was."""
    with tenant_context(alpha):
        counts = [model.objects.count() for model in (ChangeLog, Contact, TravelDocument, Preferences,
                                                      LoyaltyMembership, FamilyDate, Employment, Trip, Complaint,
                                                      Opportunity)]
        customers = list(Customer.objects.order_by("pk").values_list("pk", "name", "owner_id", "tags", "merged_into_id",
                                                                     "search_text"))
    connection.set_schema_to_public()
    return counts, customers


# name: (the service call, the page's POST (url, data), the API call (method, url, data) or None, who survives)
WRITES = {
    "update": (
        lambda m, actor: services.customer_update(actor=actor, via="page", customer=m.drop, name="改名"),
        lambda m: (f"/customers/{m.drop.pk}/edit/", {"kind": "person", "name": "改名", "language": "zh-hans",
                                                     "source": "other"}),
        lambda m: ("patch", f"{API}/customers/{m.drop.pk}/", {"name": "改名"}), "keep"),
    "contact": (
        lambda m, actor: services.contact_add(actor=actor, customer=m.drop, channel="call", summary="打过电话"),
        lambda m: (f"/customers/{m.drop.pk}/contacts/", {"channel": "call", "direction": "in", "summary": "打过电话"}),
        lambda m: ("post", f"{API}/customers/{m.drop.pk}/contacts/", {"channel": "call", "summary": "打过电话"}), "keep"),
    "document": (
        lambda m, actor: services.document_add(actor=actor, customer=m.drop, kind="passport", issuing_country="CN",
                                               number="E12345678", via="page"),
        lambda m: (f"/customers/{m.drop.pk}/documents/add/", {"kind": "passport", "issuing_country": "CN",
                                                              "number": "E12345678"}),
        lambda m: ("post", f"{API}/customers/{m.drop.pk}/documents/", {"kind": "passport", "issuing_country": "CN",
                                                                       "number": "E12345678"}), "keep"),
    "preferences": (
        lambda m, actor: services.customer_preferences_set(actor=actor, customer=m.drop, seat="window"),
        lambda m: (f"/customers/{m.drop.pk}/profile/preferences/", {"seat": "window"}),
        lambda m: ("put", f"{API}/customers/{m.drop.pk}/preferences/", {"seat": "window"}), "keep"),
    "loyalty": (
        lambda m, actor: services.loyalty_set(actor=actor, customer=m.drop, programme="凤凰知音", number="CA1234567"),
        lambda m: (f"/customers/{m.drop.pk}/profile/loyalty/", {"programme": "凤凰知音", "number": "CA1234567"}),
        None, "keep"),
    "family date": (
        lambda m, actor: services.family_date_add(actor=actor, customer=m.drop, label="结婚纪念日", date=date(2010, 5, 1)),
        lambda m: (f"/customers/{m.drop.pk}/profile/family-dates/", {"label": "结婚纪念日", "date": "2010-05-01"}),
        None, "keep"),
    "employment": (
        lambda m, actor: services.employment_set(actor=actor, company=m.gone, person=m.other),
        lambda m: (f"/customers/{m.gone.pk}/company/link/", {"person": m.other.pk, "is_traveler": "on"}),
        None, "company"),
    "bulk": (
        lambda m, actor: services.customers_bulk_update(
            actor=actor, via="bulk", customers=Customer.objects.filter(pk__in=[m.other.pk, m.drop.pk]), add_tag="VIP"),
        lambda m: ("/customers/bulk/", {"ids": [m.other.pk, m.drop.pk], "tag": "VIP"}),
        lambda m: ("post", f"{API}/customers/bulk/", {"ids": [m.other.pk, m.drop.pk], "add_tag": "VIP"}), "keep"),
    "merge": (
        lambda m, actor: services.customer_merge(actor=actor, keep=m.other, drop=m.drop),
        lambda m: (f"/customers/{m.other.pk}/merge/", {"other": m.drop.pk, "keep": m.other.pk}),
        lambda m: ("post", f"{API}/customers/{m.other.pk}/merge/", {"drop": m.drop.pk}), "keep"),
    "trip": (
        lambda m, actor: trips_services.trip_create(actor=actor, customer=m.drop, title="日本"),
        lambda m: ("/trips/new/", {"customer": m.drop.pk, "title": "日本"}),
        lambda m: ("post", f"{API}/trips/", {"customer": m.drop.pk, "title": "日本"}), "keep"),
    "complaint": (
        lambda m, actor: care_services.complaint_log(actor=actor, customer=m.drop, category="hotel", severity="medium",
                                                     description="房间很吵"),
        lambda m: (f"/customers/{m.drop.pk}/complaints/new/", {"category": "hotel", "severity": "medium",
                                                               "description": "房间很吵"}),
        lambda m: ("post", f"{API}/complaints/", {"customer": m.drop.pk, "category": "hotel", "severity": "medium",
                                                  "description": "房间很吵"}), "keep"),
    "lead": (
        lambda m, actor: pipeline_services.lead_intake(source="staff", customer=m.drop, actor=actor, destination="三亚"),
        lambda m: ("/pipeline/new/", {"customer": m.drop.pk, "source": "staff", "destination": "三亚", "adults": 1,
                                      "children": 0}),
        lambda m: ("post", f"{API}/opportunities/", {"customer": m.drop.pk, "source": "staff", "destination": "三亚"}),
        "keep"),
}


@pytest.mark.parametrize("write", WRITES)
def test_a_write_to_a_merged_away_customer_is_refused_alike_everywhere(page_client, api_client, alpha, merged, write):
    service, page, api, survivor = WRITES[write]
    survivor = getattr(merged, survivor)
    before = written(alpha)

    with tenant_context(alpha):
        with pytest.raises(services.MergedAway) as refused:
            service(merged, staff(alpha, "admin"))
    connection.set_schema_to_public()
    assert refused.value.survivor.pk == survivor.pk
    message = str(refused.value.messages[0])
    assert f"#{survivor.pk}" in message and survivor.name in message
    assert written(alpha) == before

    url, data = page(merged)
    response = page_client("alpha", "admin").post(url, data)
    if write == "bulk":  # a list action: the message, back to the list
        assert response.status_code == 302
        assert [str(m) for m in get_messages(response.wsgi_request)] == [message]
    else:  # on the form, as any refusal
        assert response.status_code == 400, response.content[:300]
        assert f"(#{survivor.pk})" in response.content.decode()
    assert written(alpha) == before

    if api is not None:
        method, url, data = api(merged)
        response = getattr(api_client("alpha", "admin"), method)(url, data, format="json")
        assert response.status_code == 409, response.content
        error = response.json()["error"]
        assert error["survivor"] == {"id": survivor.pk, "name": survivor.name, "url": f"/customers/{survivor.pk}/"}
        assert error["message"] == message
        assert written(alpha) == before


def test_the_same_writes_to_the_survivor_go_through(alpha, merged):
    """The fence refuses the record, not the write: the survivor takes it."""
    with tenant_context(alpha):
        admin = staff(alpha, "admin")
        services.contact_add(actor=admin, customer=merged.keep, channel="call", summary="打过电话")
        services.customer_update(actor=admin, via="page", customer=merged.keep, name="王芳芳")
        trips_services.trip_create(actor=admin, customer=merged.keep, title="日本")
        assert Contact.objects.filter(customer=merged.keep, summary="打过电话").exists()
        assert Trip.objects.filter(customer=merged.keep).count() == 1


@pytest.mark.parametrize("path", ["service", "page", "api"])
def test_a_handover_leaves_merged_away_records_alone(page_client, api_client, alpha, merged, path):
    """A handover moves the colleague's live customers only, by every path."""
    with tenant_context(alpha):
        sales, service = staff(alpha, "sales"), staff(alpha, "service")
        Customer.objects.filter(pk=merged.drop.pk).update(owner=sales)
        if path == "service":
            services.customers_handover(actor=staff(alpha, "admin"), from_user=sales, to_users=[service])
    connection.set_schema_to_public()
    if path == "page":
        response = page_client("alpha", "admin").post("/customers/handover/", {"from_user": sales.pk,
                                                                               "to_users": [service.pk]})
        assert response.status_code == 302
    elif path == "api":
        response = api_client("alpha", "admin").post(f"{API}/handover/", {"from_user": sales.pk,
                                                                         "to_users": [service.pk]}, format="json")
        assert response.status_code == 200 and response.json()["moved"] == {str(service.pk): 1}
    with tenant_context(alpha):
        assert Customer.objects.get(pk=merged.other.pk).owner_id == service.pk
        assert Customer.objects.get(pk=merged.drop.pk).owner_id == sales.pk
        assert not ChangeLog.objects.filter(customer=merged.drop, field="owner", via="handover").exists()


def test_what_older_records_write_on_the_timeline_goes_to_the_survivor(alpha):
    """Trips and complaints stay with the record they were made for; what they write on the timeline
    afterwards (a payment, a status) belongs on the person's card: the survivor's (services.timeline_add)."""
    with tenant_context(alpha):
        admin = staff(alpha, "admin")
        keep = services.customer_create(actor=None, via="page", name="王芳", phones=["13800138000"])
        drop = services.customer_create(actor=None, via="page", name="王 芳", phones=["13900139000"])
        trip = trips_services.trip_create(actor=admin, customer=drop, title="日本", status=Trip.Status.CONFIRMED)
        trips_services.item_add(actor=admin, trip=trip, kind="hotel", description="京都", cost="3000", sell="5000")
        complaint = care_services.complaint_log(actor=admin, customer=drop, category="hotel", severity="medium",
                                                description="房间很吵")
        services.customer_merge(actor=admin, keep=keep, drop=drop)
        trip.refresh_from_db()
        trips_services.payment_record(actor=admin, trip=trip, kind="deposit", amount="1000", method="bank",
                                      received_on=date.today())
        care_services.complaint_set_status(actor=admin, complaint=complaint, status="in_progress")
        assert trip.customer_id == drop.pk and Contact.objects.filter(customer=drop).count() == 0
        assert Contact.objects.filter(customer=keep, channel="trip", summary__contains="1,000").exists()
        assert Contact.objects.filter(customer=keep, channel="complaint").count() == 2  # logged (moved), status
