"""The value pages and API (R-VAL-1 … R-VAL-6): dashboard with charts and exports, drill-down, the
warning list, settings, the customer list's value filters — and the fences: roles and agencies."""
import json

import pytest
from django_tenants.utils import tenant_context

from crm.value import services
from crm.value.models import CustomerValue, ValueSettings, ValueWarning

from .test_value_scores import buyer, trip
from .test_value_segments import ladder

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(alpha):
    with tenant_context(alpha):
        customers, x, _trips = ladder()
        services.value_run()
    return customers, x


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def test_dashboard_shows_every_panel_with_chart_data(scored, page_client):
    html = text(page_client("alpha", "manager").get("/value/"))
    for panel in ("segments", "rfm-grid", "quadrants", "trend", "funnel", "service", "campaigns", "at-risk",
                  "dormant", "pareto", "warning-counts"):
        assert f'data-test="{panel}"' in html, panel
    charts = json.loads(html.split('id="value-charts" type="application/json">')[1].split("</script>")[0])
    assert sum(charts["segments"]["customers"]) == 11
    assert charts["quadrants"]["customers"] == [4, 2, 1, 4]  # small-low, small-high, large-low, large-high
    assert "chart-4.6.1.umd.min.js" in html and 'data-chart="trend"' in html
    assert "Keep them" in html  # the large-high strategy, where staff act


def test_exports_carry_the_chart_numbers(scored, page_client):
    client = page_client("alpha", "finance")
    segments = text(client.get("/value/export/segments.csv"))
    assert segments.startswith("\ufeff") and "Most valuable,4," in segments.replace("\r", "")
    assert "Declining,1," in segments
    customers = text(client.get("/value/export/customers.csv?segment=declining"))
    assert "昔日大客户" in customers and "阶梯9" not in customers
    assert client.get("/value/export/passwords.csv").status_code == 404
    assert client.get("/value/customers/?segment=nonsense").status_code == 404


def test_drill_down_and_card(scored, page_client):
    customers, x = scored
    html = text(page_client("alpha", "manager").get("/value/customers/?quadrant=large_low"))
    assert "昔日大客户" in html and 'data-test="strategy"' in html and "阶梯0" not in html
    card = text(page_client("alpha", "sales").get(f"/customers/{x.pk}/"))
    assert 'data-test="segment"' in card and "Declining" in card and 'data-test="strategy"' in card


def test_customer_list_filters_by_segment_and_rfm(scored, page_client, api_client):
    customers, x = scored
    html = text(page_client("alpha", "sales").get("/customers/?segment=most_valuable"))
    assert "阶梯9" in html and "阶梯6" in html and "阶梯5" not in html and 'data-test="rfm-badge"' in html
    html = text(page_client("alpha", "sales").get("/customers/?rfm=5*5"))
    assert "阶梯9" in html and "阶梯8" in html and "阶梯7" not in html  # c7: 544
    # A role that may not see value gets the unfiltered list and no badges.
    html = text(page_client("alpha", "call_center").get("/customers/?segment=most_valuable"))
    assert "阶梯0" in html and 'data-test="rfm-badge"' not in html
    body = api_client("alpha", "sales").get("/api/v1/customers/?segment=declining").json()
    assert [row["name"] for row in body["results"]] == ["昔日大客户"]
    refused = api_client("alpha", "call_center").get("/api/v1/customers/?segment=declining")
    assert refused.status_code == 400 and "You may not filter by customer value." in str(refused.json())
    assert api_client("alpha", "sales").get("/api/v1/customers/?rfm=6**").status_code == 400


def test_warning_list_managers_see_all_owners_their_own(alpha, page_client, api_client):
    from accounts.models import User
    with tenant_context(alpha):
        sales = User.objects.get(role="sales")
        mine, theirs = buyer("我的沉睡客户"), buyer("别人的沉睡客户")
        mine.owner = sales
        mine.save(update_fields=["owner"])
        trip(mine, days_ago=200, sell="1000")
        trip(theirs, days_ago=200, sell="1000")
        services.value_run()
        assert ValueWarning.objects.filter(kind="dormant").count() == 2
    home = text(page_client("alpha", "sales").get("/"))
    assert 'data-test="value-dashboard"' in home and "我的沉睡客户" in home and "别人的沉睡客户" not in home
    html = text(page_client("alpha", "manager").get("/value/warnings/?kind=dormant"))
    assert "我的沉睡客户" in html and "别人的沉睡客户" in html
    html = text(page_client("alpha", "sales").get("/value/warnings/"))
    assert "我的沉睡客户" in html and "别人的沉睡客户" not in html
    rows = api_client("alpha", "sales").get("/api/v1/value/warnings/").json()["results"]
    assert [row["customer"]["name"] for row in rows] == ["我的沉睡客户"]
    assert page_client("alpha", "call_center").get("/value/warnings/").status_code == 403


def test_settings_field_errors_and_recompute(alpha, page_client, api_client, django_capture_on_commit_callbacks):
    client = page_client("alpha", "admin")
    bad = client.post("/settings/value/", {"window_months": 1, "monetary_basis": "margin", "late_days": 14,
                                           "spend_drop_share": 50, "complaints_window_days": 90,
                                           "complaints_rise_min": 2, "dormant_days": 180, "at_risk_p_alive": 30})
    assert bad.status_code == 400 and 'data-field="window_months"' in bad.content.decode() or \
        "Between 3 and 120" in bad.content.decode()
    ok = client.post("/settings/value/", {"window_months": 12, "monetary_basis": "revenue", "late_days": 30,
                                          "spend_drop_share": 40, "complaints_window_days": 60,
                                          "complaints_rise_min": 3, "dormant_days": 365, "at_risk_p_alive": 20})
    assert ok.status_code == 302
    with tenant_context(alpha):
        rules = ValueSettings.objects.get()
        assert (rules.window_months, rules.monetary_basis, rules.dormant_days) == (12, "revenue", 365)
    response = api_client("alpha", "admin").patch("/api/v1/value/settings/", {"spend_drop_share": 99}, format="json")
    assert response.status_code == 400 and "spend_drop_share" in str(response.json())
    assert page_client("alpha", "manager").get("/settings/value/").status_code == 403
    with django_capture_on_commit_callbacks() as callbacks:
        assert api_client("alpha", "manager").post("/api/v1/value/recompute/").status_code == 202
    assert len(callbacks) == 1
    assert api_client("alpha", "sales").post("/api/v1/value/recompute/").status_code == 403


def test_value_api_and_the_fence(scored, alpha, bravo, api_client, page_client):
    customers, x = scored
    body = api_client("alpha", "manager").get("/api/v1/value/summary/").json()
    assert {s["segment"]: s["customers"] for s in body["segments"]}["most_valuable"] == 4
    one = api_client("alpha", "sales").get(f"/api/v1/value/customers/{x.pk}/").json()
    assert one["rfm"] == "155" and one["segment"] == "declining" and one["strategy"]
    assert api_client("alpha", "sales").get("/api/v1/value/customers/").status_code == 403  # the list is a report
    assert api_client("alpha", "call_center").get(f"/api/v1/value/customers/{x.pk}/").status_code == 403
    with tenant_context(bravo):
        stranger = buyer("Bravo customer")
        trip(stranger, days_ago=3, sell="100")
        services.value_run()
        assert CustomerValue.objects.count() == 1
    # Other agency's ids, host and token.
    assert api_client("alpha", "manager").get(f"/api/v1/value/customers/{stranger.pk}/").status_code == 404
    assert api_client("bravo", "manager", on="alpha.localhost").get("/api/v1/value/summary/").status_code in (401, 403)
    assert page_client("bravo", "manager", on="alpha.localhost").get("/value/").status_code in (302, 403)
    bravo_summary = api_client("bravo", "manager").get("/api/v1/value/summary/").json()
    assert sum(s["customers"] for s in bravo_summary["segments"]) == 1
