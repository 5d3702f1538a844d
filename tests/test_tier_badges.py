"""The service-tier badge wherever staff meet the customer (R-TIER-1): the card, the customer list
(with a tier filter), the top-bar search, the screen pop (page and API), the pipeline board, list and
opportunity page; and the customer API. One agency's tiers never show or filter in another's."""
from urllib.parse import quote

import pytest
from django_tenants.utils import tenant_context

from crm.customers import services as crm_services
from crm.customers.models import ChangeLog
from crm.pipeline import services as pipeline_services
from crm.tiers.models import CustomerTier, ServiceTier

from .conftest import staff

pytestmark = pytest.mark.django_db
BADGE = 'class="pill tier-badge"'


def tiered(agency, name: str, tier_name: str, *, phone: str = "13800138000", color: str = "#c9a227"):
    """A customer of ``agency`` placed in a tier (as the nightly job would) and a lead of theirs."""
    with tenant_context(agency):
        customer = crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name=name, phones=[phone])
        tier, _ = ServiceTier.objects.get_or_create(name=tier_name, defaults={"rank": 1, "color": color})
        CustomerTier.objects.create(customer=customer, tier=tier, computed_tier=tier)
        opportunity = pipeline_services.lead_intake(source="staff", customer=customer, destination="京都",
                                                    actor=staff(agency, "manager"))
        pipeline_services.opportunity_assign(actor=staff(agency, "manager"), opportunity=opportunity,
                                             owner=staff(agency, "sales"))
    return customer, tier, opportunity


def badge(tier) -> str:
    return f'data-tier="{tier.pk}" title="{tier.name}">{tier.name}</span>'


def test_the_badge_shows_on_the_card_list_search_and_screen_pop(page_client, alpha):
    customer, gold, _ = tiered(alpha, "王芳", "金卡 Gold")
    client = page_client("alpha", "manager")
    card = client.get(f"/customers/{customer.pk}/").content.decode()
    assert badge(gold) in card
    listing = client.get("/customers/").content.decode()
    assert badge(gold) in listing and f'<option value="{gold.pk}"' in listing
    search = client.get("/search/", {"q": "王芳"}, HTTP_HX_REQUEST="true").content.decode()
    assert badge(gold) in search
    pop = page_client("alpha", "call_center").get(f"/screen-pop/{quote('+86 138 0013 8000')}/").content.decode()
    assert f'<dd data-test="tier"><span {BADGE}' in pop and badge(gold) in pop


def test_the_list_filters_by_tier(page_client, alpha):
    gold_customer, gold, _ = tiered(alpha, "王芳", "Gold")
    with tenant_context(alpha):
        crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name="李雷", phones=["13900001111"])
    client = page_client("alpha", "manager")
    filtered = client.get("/customers/", {"tier": gold.pk}).content.decode()
    assert "王芳" in filtered and "李雷" not in filtered
    assert "李雷" in client.get("/customers/").content.decode()
    assert "王芳" not in client.get("/customers/", {"tier": "x"}).content.decode()  # nonsense matches nobody


def test_the_badge_shows_on_the_pipeline_board_list_and_opportunity(page_client, alpha):
    _, gold, opportunity = tiered(alpha, "王芳", "Gold")
    client = page_client("alpha", "sales")
    for url in ("/pipeline/", "/pipeline/list/", f"/pipeline/{opportunity.pk}/"):
        html = client.get(url).content.decode()
        assert badge(gold) in html, url


def test_the_api_gives_the_tier_and_filters_by_it(api_client, alpha):
    customer, gold, _ = tiered(alpha, "王芳", "Gold")
    client = api_client("alpha", "manager")
    assert client.get(f"/api/v1/customers/{customer.pk}/").json()["tier"] == "Gold"
    rows = client.get("/api/v1/customers/", {"tier": gold.pk}).json()["results"]
    assert [(row["id"], row["tier"]) for row in rows] == [(customer.pk, "Gold")]
    pop = client.get("/api/v1/screen-pop/", {"phone": "13800138000"}).json()
    assert pop["tier"] == "Gold"


def test_one_agencys_tier_never_shows_or_filters_in_another(page_client, api_client, alpha, bravo):
    _, alpha_gold, _ = tiered(alpha, "王芳", "Alpha Gold")
    bravo_customer, _, _ = tiered(bravo, "赵六", "Bravo Platinum", color="#111111")
    # alpha's tier id used on bravo's host finds none of bravo's customers unless bravo has that id too
    with tenant_context(bravo):
        bravo_ids = set(CustomerTier.objects.filter(tier_id=alpha_gold.pk).values_list("customer_id", flat=True))
    rows = api_client("bravo", "manager").get("/api/v1/customers/", {"tier": alpha_gold.pk}).json()["results"]
    assert {row["id"] for row in rows} == bravo_ids
    assert all(row["tier"] != "Alpha Gold" for row in rows)
    bravo_list = page_client("bravo", "manager").get("/customers/").content.decode()
    assert "Alpha Gold" not in bravo_list and "Bravo Platinum" in bravo_list
    # bravo's customer id on alpha's host is not found, badge or no badge
    assert page_client("alpha", "manager").get(f"/customers/{bravo_customer.pk}/").status_code == 404
    assert "Bravo Platinum" not in page_client("alpha", "manager").get("/customers/").content.decode()
