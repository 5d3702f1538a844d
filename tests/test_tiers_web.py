"""Service-tier pages and API: settings with field errors, the card, overrides, the report and its
CSV, the dashboard, permissions by role, and attempts across the agency fence."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from crm.tiers import services
from crm.tiers.models import CustomerTier, ServiceClock, ServiceTier, TierChange

from .care_factories import customer, user
from .tier_factories import booking, ladder

pytestmark = pytest.mark.django_db
ROLES = ("admin", "manager", "sales", "call_center", "service", "finance")


@pytest.fixture
def alpha_tiers(alpha):
    with tenant_context(alpha):
        tiers = ladder()
        vip = customer("VIP 贵宾", owner=user(alpha, "sales"))
        booking(vip, 150000)
        services.assignment_run()
        late = ServiceClock.objects.create(
            kind="request", customer=vip, tier=tiers["gold"], tier_name="Gold", target_hours=4,
            started_at=timezone.now() - timedelta(hours=5), due_at=timezone.now() - timedelta(hours=1),
            owner=user(alpha, "sales"), key="test:late")
    connection.set_schema_to_public()
    return {"tiers": tiers, "vip": vip, "late": late}


@pytest.fixture
def bravo_tiers(bravo):
    with tenant_context(bravo):
        tiers = ladder()
        other = customer("Bravo VIP")
        services.assignment_run()
    connection.set_schema_to_public()
    return {"tiers": tiers, "customer": other}


# --- settings page --------------------------------------------------------------------------------

@pytest.mark.parametrize("role, allowed", [(r, r in ("admin", "manager")) for r in ROLES])
def test_tier_settings_page_is_for_admins_and_managers(page_client, alpha_tiers, role, allowed):
    response = page_client("alpha", role).get("/settings/tiers/")
    assert response.status_code == (200 if allowed else 403)
    if allowed:
        assert "Gold" in response.content.decode() and 'data-test="recompute"' in response.content.decode()


def test_adding_and_editing_a_tier_shows_field_errors(page_client, alpha_tiers, alpha):
    client = page_client("alpha", "manager")
    response = client.post("/settings/tiers/", {"action": "tier:new", "tier-new-name": "gold", "tier-new-color": "#ffffff",
                                                "tier-new-applies_to": "both", "tier-new-min_spend_12m": "-5",
                                                "tier-new-lead_response_hours": "0"})
    assert response.status_code == 400
    body = response.content.decode()
    for field in ("name", "min_spend_12m", "lead_response_hours"):
        assert f'data-field="{field}"' in body
    response = client.post("/settings/tiers/", {"action": "tier:new", "tier-new-name": "Platinum",
                                                "tier-new-color": "#334155", "tier-new-applies_to": "company",
                                                "tier-new-min_spend_12m": "500000", "tier-new-visit_cadence": "weekly",
                                                "tier-new-lead_response_hours": "1", "tier-new-perks": "Lounge"})
    assert response.status_code == 302
    gold = alpha_tiers["tiers"]["gold"]
    response = client.post("/settings/tiers/", {"action": f"tier:{gold.pk}", f"tier-{gold.pk}-name": "Gold",
                                                f"tier-{gold.pk}-color": "#c9a227", f"tier-{gold.pk}-applies_to": "both",
                                                f"tier-{gold.pk}-min_spend_12m": "120000"})
    assert response.status_code == 302
    with tenant_context(alpha):
        platinum = ServiceTier.objects.get(name="Platinum")
        assert (platinum.rank, platinum.applies_to, platinum.visit_cadence) == (4, "company", "weekly")
        assert ServiceTier.objects.get(pk=gold.pk).min_spend_12m == Decimal(120000)
    connection.set_schema_to_public()
    assert client.post("/settings/tiers/", {"action": f"move:{platinum.pk}", "direction": "up"}).status_code == 302
    response = client.post("/settings/tiers/", {"action": "rules", "rules-hysteresis_percent": "99",
                                                "rules-min_days_in_tier": "10"})
    assert response.status_code == 400 and 'data-field="hysteresis_percent"' in response.content.decode()
    with tenant_context(alpha):
        assert ServiceTier.objects.get(pk=platinum.pk).rank == 3


def test_recompute_now_queues_the_assignment_in_this_agency(page_client, alpha_tiers, monkeypatch):
    from crm.tiers import tasks

    queued = []
    monkeypatch.setattr(tasks.assign_tiers_now, "delay", lambda: queued.append(connection.schema_name))
    response = page_client("alpha", "admin").post("/settings/tiers/", {"action": "recompute"})
    assert response.status_code == 302 and queued == ["alpha"]



def test_recompute_now_shows_its_progress_until_done(page_client, alpha_tiers, alpha, monkeypatch):
    """Issue 20: "recompute now" said "in a minute or two" and showed nothing more; now its progress is
    polled (htmx) like an import's: waiting for a worker, recomputing (how many customers), done with counts."""
    from crm.customers.models import Customer
    from crm.tiers import tasks
    from crm.tiers.models import TierRecompute

    monkeypatch.setattr(tasks.assign_tiers_now, "delay", lambda: None)  # the worker's part is run below
    admin = page_client("alpha", "admin")
    response = admin.post("/settings/tiers/", {"action": "recompute"}, follow=True)
    body = response.content.decode()
    assert "its progress shows below" in body and "in a minute or two" not in body
    with tenant_context(alpha):
        job = TierRecompute.objects.get()
        population = Customer.objects.filter(merged_into__isnull=True).count()
    url = f"/settings/tiers/recompute/{job.pk}/"
    assert f'hx-get="{url}" hx-trigger="every 1s"' in body and 'data-test="recompute-waiting"' in body

    with tenant_context(alpha):  # a worker holds it
        TierRecompute.objects.filter(pk=job.pk).update(lease_owner="worker-1", lease_until=timezone.now())
    fragment = admin.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-status="running"' in fragment and "hx-trigger" in fragment
    assert f"Recomputing: measuring {population} customer" in fragment and population >= 1

    with tenant_context(alpha):
        TierRecompute.objects.filter(pk=job.pk).update(lease_owner="", lease_until=None)
        result = services.recompute_run()
        assert result["recomputed"] == 1
    fragment = admin.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-status="done"' in fragment and "hx-trigger" not in fragment  # the polling stops
    assert f"{result['customers']} customers measured, {result['changes']} tier changes." in fragment
    assert 'data-test="recompute-done"' in admin.get("/settings/tiers/").content.decode()

    # Fenced: another agency's admin, and a role without the tier settings, never see it.
    assert page_client("bravo", "admin").get(url).status_code == 404
    assert page_client("alpha", "sales").get(url).status_code == 403


# --- card, customer tier page, override -----------------------------------------------------------

def test_card_shows_the_tier_why_service_and_history(page_client, alpha_tiers):
    vip = alpha_tiers["vip"]
    body = page_client("alpha", "call_center").get(f"/customers/{vip.pk}/").content.decode()
    assert 'data-test="tier-card"' in body and "Gold" in body and "From the tier criteria" in body
    assert "Dedicated account manager" in body and 'data-test="tier-history"' in body


def test_a_manager_overrides_with_field_errors_then_removes(page_client, alpha_tiers, alpha):
    vip, silver = alpha_tiers["vip"], alpha_tiers["tiers"]["silver"]
    client = page_client("alpha", "manager")
    response = client.post(f"/customers/{vip.pk}/tier/", {"tier": silver.pk, "reason": "",
                                                          "until": timezone.localdate().isoformat()})
    assert response.status_code == 400
    body = response.content.decode()
    assert 'data-field="reason"' in body and 'data-field="until"' in body
    until = (timezone.localdate() + timedelta(days=30)).isoformat()
    response = client.post(f"/customers/{vip.pk}/tier/", {"tier": silver.pk, "reason": "Asked to be downgraded",
                                                          "until": until})
    assert response.status_code == 302
    body = client.get(f"/customers/{vip.pk}/tier/").content.decode()
    assert "Asked to be downgraded" in body and 'data-test="remove-override"' in body
    assert client.post(f"/customers/{vip.pk}/tier/", {"remove": "1"}).status_code == 302
    with tenant_context(alpha):
        assert CustomerTier.objects.get(customer=vip).tier.name == "Gold"
        assert TierChange.objects.filter(customer=vip).count() == 3


@pytest.mark.parametrize("role", ["sales", "call_center", "service", "finance"])
def test_staff_without_manager_rights_see_but_cannot_override(page_client, alpha_tiers, role):
    vip, silver = alpha_tiers["vip"], alpha_tiers["tiers"]["silver"]
    client = page_client("alpha", role)
    page = client.get(f"/customers/{vip.pk}/tier/")
    assert page.status_code == 200 and 'data-test="override-form"' not in page.content.decode()
    assert client.post(f"/customers/{vip.pk}/tier/", {"tier": silver.pk, "reason": "x"}).status_code == 403


# --- dashboard, clocks, report --------------------------------------------------------------------

def test_dashboard_shows_breaches_to_managers_and_owners(page_client, alpha_tiers):
    manager = page_client("alpha", "manager").get("/").content.decode()
    assert 'data-test="tier-dashboard"' in manager and "VIP 贵宾" in manager and "breached" in manager
    owner = page_client("alpha", "sales").get("/").content.decode()
    assert "VIP 贵宾" in owner
    service = page_client("alpha", "service").get("/").content.decode()
    assert 'data-test="tier-dashboard"' not in service  # nothing of theirs at risk


def test_clock_list_is_scoped_to_ones_own_clocks(page_client, alpha_tiers):
    assert "VIP 贵宾" in page_client("alpha", "manager").get("/service-levels/clocks/?state=breached").content.decode()
    assert "VIP 贵宾" in page_client("alpha", "sales").get("/service-levels/clocks/").content.decode()
    assert "VIP 贵宾" not in page_client("alpha", "service").get("/service-levels/clocks/").content.decode()
    assert page_client("alpha", "finance").get("/service-levels/clocks/").status_code == 403


@pytest.mark.parametrize("role, allowed", [(r, r in ("admin", "manager", "finance")) for r in ROLES])
def test_report_page_and_csv(page_client, alpha_tiers, role, allowed):
    client = page_client("alpha", role)
    page = client.get("/service-levels/")
    assert page.status_code == (200 if allowed else 403)
    if not allowed:
        return
    assert 'data-test="by-tier"' in page.content.decode()
    export = client.get("/service-levels/report.csv")
    text = b"".join(export.streaming_content).decode()
    assert export["Content-Type"].startswith("text/csv") and text.startswith("\ufeff")
    assert "tier,Gold,1,0,1,0.0," in text
    assert client.get("/service-levels/?date_from=2025-05-02&date_to=2025-05-01").status_code == 200


# --- API ------------------------------------------------------------------------------------------

def test_api_tier_crud_with_field_errors(api_client, alpha_tiers):
    client = api_client("alpha", "manager")
    assert [t["name"] for t in client.get("/api/v1/service-tiers/").json()["results"]] == ["Gold", "Silver", "Standard"]
    bad = client.post("/api/v1/service-tiers/", {"name": "Silver", "color": "red"}, format="json")
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) >= {"name", "color"}
    made = client.post("/api/v1/service-tiers/", {"name": "Bronze", "min_trips_12m": 1, "request_response_hours": 72},
                       format="json")
    assert made.status_code == 201 and made.json()["rank"] == 4
    bronze = made.json()["id"]
    assert client.patch(f"/api/v1/service-tiers/{bronze}/", {"perks": "Tea"}, format="json").json()["perks"] == "Tea"
    order = client.post(f"/api/v1/service-tiers/{bronze}/move/", {"direction": "up"}, format="json").json()
    assert [t["name"] for t in order] == ["Gold", "Silver", "Bronze", "Standard"]
    assert client.delete(f"/api/v1/service-tiers/{bronze}/").status_code == 204
    settings = client.put("/api/v1/tier-settings/", {"hysteresis_percent": 15, "min_days_in_tier": 60,
                                                     "notify_owner": False}, format="json")
    assert settings.status_code == 200 and settings.json()["min_days_in_tier"] == 60
    sales = api_client("alpha", "sales")
    assert sales.get("/api/v1/service-tiers/").status_code == 200
    assert sales.post("/api/v1/service-tiers/", {"name": "Mine"}, format="json").status_code == 403
    assert sales.get("/api/v1/tier-settings/").status_code == 403


def test_api_customer_tier_and_override(api_client, alpha_tiers):
    vip, silver = alpha_tiers["vip"], alpha_tiers["tiers"]["silver"]
    data = api_client("alpha", "sales").get(f"/api/v1/customer-tiers/{vip.pk}/").json()
    assert data["tier"]["name"] == "Gold" and data["trips_12m"] == 1 and data["history"][0]["to_name"] == "Gold"
    assert api_client("alpha", "sales").post(f"/api/v1/customer-tiers/{vip.pk}/override/",
                                             {"tier": silver.pk, "reason": "x"}, format="json").status_code == 403
    manager = api_client("alpha", "manager")
    bad = manager.post(f"/api/v1/customer-tiers/{vip.pk}/override/", {"tier": silver.pk, "reason": " ",
                                                                     "until": "2001-01-01"}, format="json")
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"reason", "until"}
    done = manager.post(f"/api/v1/customer-tiers/{vip.pk}/override/", {"tier": silver.pk, "reason": "Asked"}, format="json")
    assert done.status_code == 200 and done.json()["tier"]["name"] == "Silver" and done.json()["override_reason"] == "Asked"
    removed = manager.delete(f"/api/v1/customer-tiers/{vip.pk}/override/")
    assert removed.status_code == 200 and removed.json()["tier"]["name"] == "Gold"


def test_api_clocks_and_report(api_client, alpha_tiers):
    manager = api_client("alpha", "manager")
    clocks = manager.get("/api/v1/service-clocks/?state=breached").json()["results"]
    assert [c["id"] for c in clocks] == [alpha_tiers["late"].pk] and clocks[0]["is_breached"]
    assert api_client("alpha", "service").get("/api/v1/service-clocks/").json()["results"] == []
    assert api_client("alpha", "service").get(f"/api/v1/service-clocks/{alpha_tiers['late'].pk}/").status_code == 404
    report = manager.get("/api/v1/service-clocks/report/").json()
    assert report["overall"]["total"] == 1 and report["by_tier"][0]["label"] == "Gold"
    assert api_client("alpha", "sales").get("/api/v1/service-clocks/report/").status_code == 403
    assert manager.get("/api/v1/service-clocks/report/?from=2025-05-02&to=2025-05-01").status_code == 400


# --- across the agency fence ----------------------------------------------------------------------

def test_other_agency_ids_are_not_found(page_client, api_client, alpha_tiers, bravo_tiers):
    other_customer, other_tier = bravo_tiers["customer"], bravo_tiers["tiers"]["gold"]
    page = page_client("alpha", "admin")
    assert page.get(f"/customers/{other_customer.pk + 100000}/tier/").status_code == 404
    api = api_client("alpha", "admin")
    assert api.get(f"/api/v1/customer-tiers/{other_customer.pk + 100000}/").status_code == 404
    # Schemas are separate: an id past every row of both agencies is simply not found.
    missing = max(other_tier.pk, alpha_tiers["tiers"]["standard"].pk) + 1000
    assert api.get(f"/api/v1/service-tiers/{missing}/").status_code == 404
    assert page.post("/settings/tiers/", {"action": f"tier:{missing}", "delete": "1"}).status_code == 404


def test_other_agency_host_and_token_are_refused(page_client, api_client, alpha_tiers, bravo_tiers):
    vip = alpha_tiers["vip"]
    # alpha's session and token on bravo's host find nobody
    assert page_client("alpha", "admin", on="bravo.localhost").get("/settings/tiers/").status_code == 302
    assert api_client("alpha", "admin", on="bravo.localhost").get("/api/v1/service-tiers/").status_code == 401
    # bravo's admin on bravo sees bravo's tiers only, and alpha's customer id is not bravo's VIP
    bravo_api = api_client("bravo", "admin")
    names = [t["id"] for t in bravo_api.get("/api/v1/service-tiers/").json()["results"]]
    assert names == [t.pk for t in bravo_tiers["tiers"].values()]
    response = bravo_api.get(f"/api/v1/customer-tiers/{vip.pk}/")
    assert response.status_code == 404 or response.json()["customer"]["name"] != vip.name
    assert bravo_api.get("/api/v1/service-clocks/?state=breached").json()["results"] == []
    # the platform domain has no tier pages or API
    assert page_client(None).get("/settings/tiers/").status_code == 404
