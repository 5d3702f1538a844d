"""Care-automation pages and API: the hub and the nav by role, occasions with field errors and a
preview, the greeting log, holiday suggestions, win-back cases, referrals from the card and the
referrals page, the customer picker, and the fence between agencies (ids, hosts, tokens)."""
from datetime import date, timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.roles import Role
from crm.customers import services as crm_services
from crm.loyalty import selectors, services
from crm.loyalty.models import Greeting, LoyaltySettings, Occasion, Referral, Suggestion, WinBack
from crm.customers.models import ChangeLog, Customer
from crm.pipeline.models import Opportunity
from crm.trips.models import Trip

from .conftest import staff

pytestmark = pytest.mark.django_db


def customer(agency, name, owner_role="sales", **fields) -> Customer:
    with tenant_context(agency):
        return crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name=name,
                                            owner=staff(agency, owner_role) if owner_role else None, **fields)


def confirmed_trip(agency, buyer, depart_on, destination="Bali") -> Trip:
    with tenant_context(agency):
        return Trip.objects.create(customer=buyer, title=f"{destination} trip", destination=destination, currency="CNY",
                                   status=Trip.Status.CONFIRMED, depart_on=depart_on,
                                   return_on=depart_on + timedelta(days=4),
                                   confirmed_at=timezone.now() - timedelta(days=max((date.today() - depart_on).days, 0) + 20))


def lapsed_case(agency, name="流失客户 Lapsed") -> WinBack:
    buyer = customer(agency, name)
    today = timezone.localdate()
    confirmed_trip(agency, buyer, today - timedelta(days=800))
    confirmed_trip(agency, buyer, today - timedelta(days=420))
    with tenant_context(agency):
        services.win_back_identify()
        return WinBack.objects.get(customer=buyer)


def suggestion(agency, buyer) -> Suggestion:
    with tenant_context(agency):
        return Suggestion.objects.create(customer=buyer, festival="national_day", year=2027,
                                         break_starts_on=date(2027, 10, 1), break_ends_on=date(2027, 10, 7),
                                         last_destination="Sanya 三亚", destinations=["Phuket", "Bali"])


# --- access ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("role,hub,work,manage", [
    (Role.ADMIN, 200, 200, 200), (Role.MANAGER, 200, 200, 200), (Role.SALES, 200, 200, 403),
    (Role.CALL_CENTER, 200, 200, 403), (Role.SERVICE, 200, 200, 403), (Role.FINANCE, 403, 403, 403),
])
def test_who_sees_which_care_page(page_client, alpha, role, hub, work, manage):
    client = page_client("alpha", role)
    assert client.get("/care/").status_code == hub
    assert client.get("/care/occasions/").status_code == hub
    assert client.get("/care/greetings/").status_code == hub
    for url in ("/care/win-back/", "/care/referrals/", "/care/suggestions/", "/care/customers/?q=x"):
        assert client.get(url).status_code == work, url
    for url in ("/care/occasions/new/", "/care/settings/"):
        assert client.get(url).status_code == manage, url
    assert ('href="/care/"' in client.get("/").content.decode()) == (hub == 200)


def test_anonymous_visitors_are_sent_to_sign_in(page_client):
    response = page_client("alpha").get("/care/win-back/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert page_client(None, None).get("/care/").status_code == 404  # not on the platform domain


# --- occasions, greetings, settings ---------------------------------------------------------------

def test_occasion_pages_errors_preview_and_settings(page_client, alpha):
    client = page_client("alpha", "manager")
    listing = client.get("/care/occasions/").content.decode()
    assert "生日问候 Birthday" in listing and "春节问候 Spring Festival" in listing and "中秋问候" in listing
    bad = client.post("/care/occasions/new/", {"name": "Teachers' Day", "kind": "custom", "month": "9", "day": "10",
                                               "days_before": "0", "send_email": "on",
                                               "subject_en": "Hi {{ firstname }}", "body_en": "Thank you"})
    assert bad.status_code == 400 and "Unknown field {{ firstname }}" in bad.content.decode()
    good = client.post("/care/occasions/new/", {"name": "教师节 Teachers' Day", "kind": "custom", "month": "9",
                                                "day": "10", "days_before": "1", "send_email": "on", "active": "on",
                                                "subject_zh": "{{ name }}老师，节日快乐", "body_zh": "感谢您！{{ agency_name }}",
                                                "subject_en": "Happy Teachers' Day, {{ name }}",
                                                "body_en": "With thanks, {{ owner_name }}"})
    assert good.status_code == 302
    page = client.get(good["Location"]).content.decode()
    assert 'data-test="previews"' in page and "Happy Teachers&#x27; Day, Grace Lin" in page
    assert "王芳老师，节日快乐" in page and "With thanks, Manager of alpha" in page
    with tenant_context(alpha):
        made = Occasion.objects.get(name="教师节 Teachers' Day")
        assert (made.month, made.day, made.days_before) == (9, 10, 1)
    settings_bad = client.post("/care/settings/", {"greeting_hour": "25", "suggestion_days_before": "45",
                                                   "dormant_days": "10", "dormant_min_trips": "2"})
    assert settings_bad.status_code == 400
    body = settings_bad.content.decode()
    assert 'data-field="greeting_hour"' in body and 'data-field="dormant_days"' in body
    assert client.post("/care/settings/", {"greeting_hour": "9", "suggestion_days_before": "30", "dormant_days": "400",
                                           "dormant_min_trips": "3"}).status_code == 302
    with tenant_context(alpha):
        rules = LoyaltySettings.load()
        assert (rules.greeting_hour, rules.suggestion_days_before, rules.dormant_days, rules.win_back_declining) == (
            9, 30, 400, False)


def test_greeting_log_with_counts(page_client, alpha):
    with tenant_context(alpha):
        birthday = Occasion.objects.get(kind=Occasion.Kind.BIRTHDAY)
        Occasion.objects.exclude(pk=birthday.pk).update(active=False)
    buyer = customer(alpha, "生日 Birthday person", birthday=date(1990, 3, 10))
    with tenant_context(alpha):
        services.greetings_make(today=date(2027, 3, 10))
        assert Greeting.objects.filter(customer=buyer, channel=Greeting.Channel.TASK).exists()
    page = page_client("alpha", "service").get("/care/greetings/")
    html = page.content.decode()
    assert page.status_code == 200 and "生日 Birthday person" in html and 'data-test="greeting-counts"' in html
    assert page_client("alpha", "service").get("/care/greetings/", {"date_from": "2026-05-01",
                                                                    "date_to": "2026-04-01"}).status_code == 400


# --- referrals ------------------------------------------------------------------------------------

def test_referrals_from_the_card_and_the_referrals_page(page_client, alpha):
    referrer = customer(alpha, "推荐人 Zhao")
    friend = customer(alpha, "朋友 Qian")
    client = page_client("alpha", "sales")
    card = client.get(f"/customers/{referrer.pk}/").content.decode()
    assert 'data-test="loyalty-card"' in card and "Record a customer they referred" in card
    self_ref = client.post("/care/referrals/new/", {"referrer": referrer.pk, "referred": referrer.pk,
                                                    "back_to_customer": referrer.pk}, follow=True)
    assert "A customer cannot refer themselves." in self_ref.content.decode()
    made = client.post("/care/referrals/new/", {"referrer": referrer.pk, "referred": friend.pk, "note": "同学",
                                                "back_to_customer": referrer.pk})
    assert made.status_code == 302 and made["Location"] == f"/customers/{referrer.pk}/"
    card = client.get(f"/customers/{referrer.pk}/").content.decode()
    assert "Referred 1 customer." in card and "朋友 Qian" in card
    assert "推荐人 Zhao" in client.get(f"/customers/{friend.pk}/").content.decode()
    empty = client.post("/care/referrals/new/", {"referrer": "", "referred": ""})
    assert empty.status_code == 400
    assert "Choose the customer who made the referral." in empty.content.decode()
    confirmed_trip(alpha, friend, timezone.localdate() + timedelta(days=20))
    with tenant_context(alpha):
        services.referrals_qualify()
        referral = Referral.objects.get(referred=friend)
    page = client.get("/care/referrals/").content.decode()
    assert 'data-test="pending-rewards"' in page and "朋友 Qian" in page
    assert client.post(f"/care/referrals/{referral.pk}/reward/", {"description": "", "value": ""},
                       follow=True).content.decode().count("Describe the reward.") == 1
    rewarded = client.post(f"/care/referrals/{referral.pk}/reward/", {"description": "酒店升级 upgrade", "value": "300",
                                                                      "back_to_customer": referrer.pk})
    assert rewarded.status_code == 302
    with tenant_context(alpha):
        referral.refresh_from_db()
        assert referral.status == Referral.Status.REWARDED and referral.rewarded_by == staff(alpha, "sales")
    top = client.get("/care/referrals/").content.decode()
    assert 'data-test="top-referrers"' in top and "推荐人 Zhao" in top


def test_customer_picker_by_name_or_number(page_client, alpha):
    found = customer(alpha, "欧阳娜娜 Ouyang")
    client = page_client("alpha", "sales")
    by_name = client.get("/care/customers/", {"q": "欧阳", "field": "referrer"}).content.decode()
    assert f'name="referrer" value="{found.pk}"' in by_name
    by_number = client.get("/care/customers/", {"q": str(found.pk)}).content.decode()
    assert f'name="referred" value="{found.pk}"' in by_number


# --- win-back and suggestions ---------------------------------------------------------------------

def test_win_back_list_case_page_and_forms(page_client, alpha):
    case = lapsed_case(alpha)
    client = page_client("alpha", "service")
    listing = client.get("/care/win-back/").content.decode()
    assert "流失客户 Lapsed" in listing and 'data-test="win-back-summary"' in listing
    assert f'data-case="{case.pk}"' not in client.get("/care/win-back/", {"status": "lost"}).content.decode()
    page = client.get(f"/care/win-back/{case.pk}/")
    assert page.status_code == 200 and 'data-test="reason-form"' in page.content.decode()
    bad = client.post(f"/care/win-back/{case.pk}/reason/", {"reason": "", "note": ""})
    assert bad.status_code == 400 and "Choose the reason the customer gave." in bad.content.decode()
    assert client.post(f"/care/win-back/{case.pk}/reason/", {"reason": "price", "note": "太贵了"}).status_code == 302
    assert client.post(f"/care/win-back/{case.pk}/offer/", {"offer": "八折 20% off", "value": "1200"}).status_code == 302
    card = client.get(f"/customers/{case.customer_id}/").content.decode()
    assert 'data-test="loyalty-win-back"' in card and "Offer made" in card and "八折 20% off" in card
    assert client.post(f"/care/win-back/{case.pk}/lose/", {"note": "moved abroad"}).status_code == 302
    assert client.post(f"/care/win-back/{case.pk}/nonsense/", {}).status_code == 404
    lost = client.get("/care/win-back/", {"status": "lost", "reason": "price"}).content.decode()
    assert f'data-case="{case.pk}"' in lost and "太贵" not in lost


def test_suggestion_pages_lead_and_dismiss(page_client, alpha):
    buyer = customer(alpha, "国庆 Guoqing")
    first = suggestion(alpha, buyer)
    second = suggestion(alpha, customer(alpha, "Second"))
    client = page_client("alpha", "sales")
    listing = client.get("/care/suggestions/").content.decode()
    assert "国庆 Guoqing" in listing and "Phuket, Bali" in listing
    assert "Turn into a lead" in client.get(f"/customers/{buyer.pk}/").content.decode()
    lead = client.post(f"/care/suggestions/{first.pk}/lead/", {"destination": "Bali"})
    assert lead.status_code == 302 and lead["Location"].startswith("/pipeline/")
    with tenant_context(alpha):
        opportunity = Opportunity.objects.get(customer=buyer)
        assert (opportunity.destination, opportunity.depart_on) == ("Bali", date(2027, 10, 1))
    again = client.post(f"/care/suggestions/{first.pk}/lead/", {"destination": "Bali"}, follow=True)
    assert "already dealt with" in again.content.decode()
    assert client.post(f"/care/suggestions/{second.pk}/dismiss/", {"back_to_customer": second.customer_id}
                       )["Location"] == f"/customers/{second.customer_id}/"
    assert "Second" not in client.get("/care/suggestions/").content.decode()


# --- API ------------------------------------------------------------------------------------------

def test_api_occasions_and_greetings(api_client, alpha):
    assert api_client("alpha", "sales").post("/api/v1/care/occasions/", {}, format="json").status_code == 403
    manager = api_client("alpha", "manager")
    listed = manager.get("/api/v1/care/occasions/").json()
    assert {o["festival"] for o in listed["results"]} >= {"spring_festival", "mid_autumn"}
    bad = manager.post("/api/v1/care/occasions/", {"name": "", "kind": "festival", "festival": "",
                                                   "body_en": "{{ x }}"}, format="json")
    assert bad.status_code == 400 and {"name", "festival", "body_en"} <= set(bad.json()["error"]["fields"])
    made = manager.post("/api/v1/care/occasions/", {"name": "端午 Dragon Boat", "kind": "festival",
                                                    "festival": "dragon_boat", "days_before": 1, "make_task": True,
                                                    "subject_zh": "端午安康", "body_zh": "{{ name }}，端午安康！"},
                        format="json")
    assert made.status_code == 201 and made.json()["festival"] == "dragon_boat"
    switched = manager.patch(f"/api/v1/care/occasions/{made.json()['id']}/", {"active": False}, format="json")
    assert switched.status_code == 200 and switched.json()["active"] is False
    assert manager.get("/api/v1/care/greetings/", {"customer": "x"}).json()["count"] == 0
    assert api_client("alpha", "finance").get("/api/v1/care/greetings/").status_code == 403


def test_api_referrals_win_backs_and_suggestions(api_client, alpha):
    referrer, friend = customer(alpha, "API referrer"), customer(alpha, "API friend")
    client = api_client("alpha", "sales")
    bad = client.post("/api/v1/care/referrals/", {"referrer": referrer.pk, "referred": referrer.pk}, format="json")
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"referred"}
    made = client.post("/api/v1/care/referrals/", {"referrer": referrer.pk, "referred": friend.pk}, format="json")
    assert made.status_code == 201 and made.json()["status"] == "pending"
    early = client.post(f"/api/v1/care/referrals/{made.json()['id']}/reward/", {"description": "Gift"}, format="json")
    assert early.status_code == 400 and "status" in early.json()["error"]["fields"]
    assert client.get("/api/v1/care/referrals/top/").json()[0]["referred"] == 1
    case = lapsed_case(alpha, "API lapsed")
    assert client.get("/api/v1/care/win-backs/", {"status": "active"}).json()["count"] == 1
    reason = client.post(f"/api/v1/care/win-backs/{case.pk}/reason/", {"reason": "service", "note": "Late tickets"},
                         format="json")
    assert reason.status_code == 200 and reason.json()["reason"] == "service"
    offer = client.post(f"/api/v1/care/win-backs/{case.pk}/offer/", {"offer": "", "value": "-1"}, format="json")
    assert offer.status_code == 400
    offer = client.post(f"/api/v1/care/win-backs/{case.pk}/offer/", {"offer": "Free upgrade", "value": "300.00"},
                        format="json")
    assert offer.json()["status"] == "offered" and offer.json()["offer_value"] == "300.00"
    assert client.post(f"/api/v1/care/win-backs/{case.pk}/lose/", {}, format="json").json()["status"] == "lost"
    assert client.get("/api/v1/care/win-backs/summary/").json()["won_back_share"] == 0.0
    open_one = suggestion(alpha, friend)
    assert client.get("/api/v1/care/suggestions/", {"status": "open"}).json()["count"] == 1
    lead = client.post(f"/api/v1/care/suggestions/{open_one.pk}/lead/", {}, format="json")
    assert lead.status_code == 201 and "Phuket" in lead.json()["title"]
    assert client.post(f"/api/v1/care/suggestions/{open_one.pk}/dismiss/").status_code == 400
    assert api_client("alpha", "finance").get("/api/v1/care/win-backs/").status_code == 403


# --- the fence ------------------------------------------------------------------------------------

def test_another_agencys_care_rows_stay_out_of_reach(api_client, page_client, alpha, bravo):
    referrer, friend = customer(bravo, "Bravo referrer"), customer(bravo, "Bravo friend")
    with tenant_context(bravo):
        referral = services.referral_record(actor=staff(bravo, "sales"), referrer=referrer, referred=friend)
        occasion = services.occasion_save(actor=staff(bravo, "manager"), name="Bravo only", kind=Occasion.Kind.CUSTOM,
                                          month=7, day=1, subject_en="Hi", body_en="Hi")
    case = lapsed_case(bravo, "Bravo lapsed")
    idea = suggestion(bravo, friend)
    alpha_own = customer(alpha, "Alpha own")
    while alpha_own.pk in (referrer.pk, friend.pk):  # ids are per schema: make sure bravo's mean nothing here
        alpha_own = customer(alpha, "Alpha own")
    api = api_client("alpha", "manager")
    for url in (f"/api/v1/care/referrals/{referral.pk}/", f"/api/v1/care/win-backs/{case.pk}/",
                f"/api/v1/care/suggestions/{idea.pk}/", f"/api/v1/care/occasions/{occasion.pk}/"):
        assert api.get(url).status_code == 404, url
    assert api.post(f"/api/v1/care/win-backs/{case.pk}/reason/", {"reason": "price"}, format="json").status_code == 404
    assert api.post(f"/api/v1/care/referrals/{referral.pk}/reward/", {"description": "x"}, format="json").status_code == 404
    assert api.post(f"/api/v1/care/suggestions/{idea.pk}/dismiss/").status_code == 404
    crossed = api.post("/api/v1/care/referrals/", {"referrer": referrer.pk, "referred": alpha_own.pk}, format="json")
    assert crossed.status_code == 400 and "referrer" in crossed.json()["error"]["fields"]
    assert api_client("alpha", "manager", on="bravo.localhost").get("/api/v1/care/referrals/").status_code == 401
    pages = page_client("alpha", "manager")
    assert pages.get(f"/care/win-back/{case.pk}/").status_code == 404
    assert pages.post(f"/care/win-back/{case.pk}/reason/", {"reason": "price"}).status_code == 404
    assert pages.post(f"/care/referrals/{referral.pk}/reward/", {"description": "x"}).status_code == 404
    assert pages.post(f"/care/suggestions/{idea.pk}/lead/", {}).status_code == 404
    posted = pages.post("/care/referrals/new/", {"referrer": referrer.pk, "referred": alpha_own.pk})
    assert posted.status_code == 400
    for url in ("/care/referrals/", "/care/win-back/", "/care/suggestions/"):
        html = pages.get(url).content.decode()
        assert "Bravo" not in html, url
    with tenant_context(bravo):
        assert Referral.objects.filter(pk=referral.pk, status=Referral.Status.PENDING).exists()
        assert WinBack.objects.get(pk=case.pk).reason == ""


def test_dashboard_numbers_for_the_account_manager(alpha):
    lapsed_case(alpha)  # owned by the sales colleague
    with tenant_context(alpha):
        assert selectors.dashboard_context(user=staff(alpha, "sales")) == {
            "loyalty_cases": 1, "loyalty_suggestions": 0, "loyalty_rewards": 0}
        assert selectors.dashboard_context(user=staff(alpha, "manager")) == {}
        assert selectors.dashboard_context(user=staff(alpha, "finance")) == {}


def test_a_case_of_a_customer_without_an_account_manager_opens(page_client, alpha):
    """Demo data met it: a win-back case whose customer has no owner answered 500 (a filter argument
    looked up ``owner.email`` on None). Names of people are shown as the user (``{{ user|default:… }}``)."""
    case = lapsed_case(alpha)
    with tenant_context(alpha):
        Customer.objects.filter(pk=case.customer_id).update(owner=None)
    response = page_client("alpha", "sales").get(f"/care/win-back/{case.pk}/")
    assert response.status_code == 200
    assert "—" in response.content.decode()
