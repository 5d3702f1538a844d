"""Holiday suggestions (R-CAMP-4), win-back (R-CARE-4) and referrals (R-CARE-5): who the daily job
finds (a trip overlapping last year's break or not, booked this year or not; lapsed after two trips
or declining), the co-occurrence destinations, once per customer, owner tasks, staff recording
reasons, offers and rewards with field errors, won back and qualified by a confirmed trip, and
each agency's job touching its own rows only."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from crm.customers import services as crm_services
from crm.loyalty import selectors, services
from crm.loyalty.models import Referral, Suggestion, WinBack
from crm.customers.models import ChangeLog, Contact, Customer
from crm.pipeline.models import Task
from crm.trips.models import Trip
from crm.value.models import CustomerValue

from .conftest import staff
from .task_checks import assert_made_as_task_create

pytestmark = pytest.mark.django_db
PLAN_DAY = date(2026, 1, 1)  # 45 days before the 2026 Spring Festival break (15–23 February)
LAST_BREAK = (date(2025, 1, 28), date(2025, 2, 4))


def customer(agency, name, owner_role="sales") -> Customer:
    return crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name=name,
                                        owner=staff(agency, owner_role) if owner_role else None)


def trip(buyer, destination, depart_on, days=4, status=Trip.Status.CONFIRMED, confirmed_at=None) -> Trip:
    confirmed_at = confirmed_at or timezone.now() - timedelta(days=(timezone.localdate() - depart_on).days + 30)
    return Trip.objects.create(customer=buyer, title=f"{destination} {depart_on:%Y}", destination=destination,
                               currency="CNY", status=status, depart_on=depart_on,
                               return_on=depart_on + timedelta(days=days),
                               confirmed_at=confirmed_at if status != Trip.Status.QUOTE else None)


# --- holiday suggestions --------------------------------------------------------------------------

def test_festivals_ahead_opens_45_days_before_the_break():
    assert services.festivals_ahead(PLAN_DAY, 45) == [
        ("spring_festival", 2026, (date(2026, 2, 15), date(2026, 2, 23)), LAST_BREAK)]
    # The day before: Spring Festival is 46 days off; New Year's Day (next year's) is next.
    assert [(key, year) for key, year, *_ in services.festivals_ahead(PLAN_DAY - timedelta(days=1), 45)] == [
        ("new_year", 2026)]
    assert services.festivals_ahead(date(2026, 2, 15), 45) == []  # the break has begun


def test_last_year_at_this_holiday_finds_the_right_customers_with_co_occurrence(alpha):
    with tenant_context(alpha):
        went = customer(alpha, "去年春节 Went")
        trip(went, "Sanya 三亚", date(2025, 1, 30))
        partly = customer(alpha, "Partly")
        trip(partly, "Kyoto", date(2025, 1, 25), days=4)  # back on 29 January: overlaps the break
        before = customer(alpha, "Before the break")
        trip(before, "Sanya 三亚", date(2025, 1, 20), days=5)
        booked = customer(alpha, "Already booked")
        trip(booked, "Sanya 三亚", date(2025, 1, 29))
        trip(booked, "Harbin", date(2026, 2, 16), status=Trip.Status.QUOTE)  # a quote counts as in hand
        cancelled = customer(alpha, "Cancelled")
        trip(cancelled, "Sanya 三亚", date(2025, 1, 29), status=Trip.Status.CANCELLED)
        merged = customer(alpha, "Merged away")
        trip(merged, "Sanya 三亚", date(2025, 1, 29), status=Trip.Status.COMPLETED)
        Customer.objects.filter(pk=merged.pk).update(merged_into=went)
        # The agency's history: who went to Sanya also went to…
        for n, places in enumerate([["Sanya 三亚", "Phuket"], [" sanya 三亚 ", "Phuket"], ["Sanya 三亚", "Phuket", "Bali"],
                                    ["Sanya 三亚", "Bali", "Kyoto"], ["Paris", "Phuket"], ["Paris", "London"]]):
            other = customer(alpha, f"History {n}", owner_role=None)
            for m, place in enumerate(places):
                trip(other, place, date(2024, 3 + m, 10))
        counts = services.suggestions_make(today=PLAN_DAY)
        assert counts == {"suggestions": 2, "tasks": 2}
        rows = {s.customer_id: s for s in Suggestion.objects.all()}
        assert set(rows) == {went.pk, partly.pk}
        sanya = rows[went.pk]
        assert sanya.destinations == ["Phuket", "Bali", "Kyoto"]  # 3, 2 and 1 Sanya customers; Sanya itself left out
        assert (sanya.festival, sanya.year, sanya.break_starts_on, sanya.break_ends_on) == (
            "spring_festival", 2026, date(2026, 2, 15), date(2026, 2, 23))
        assert sanya.last_destination == "Sanya 三亚" and sanya.last_trip.customer_id == went.pk
        assert rows[partly.pk].destinations == ["Bali", "Sanya 三亚"]
        assert sanya.task.kind == Task.Kind.SUGGESTION and sanya.task.owner == staff(alpha, "sales")
        assert "Phuket, Bali, Kyoto" in sanya.task.notes and "Sanya 三亚" in sanya.task.notes
        assert_made_as_task_create(sanya.task)
        # Every day of the 45 the job runs again: one suggestion per customer, festival and year.
        assert services.suggestions_make(today=PLAN_DAY + timedelta(days=1)) == {"suggestions": 0, "tasks": 0}
        assert Task.objects.filter(kind=Task.Kind.SUGGESTION).count() == 2
        assert services.suggestions_make(today=PLAN_DAY - timedelta(days=1)) == {"suggestions": 0, "tasks": 0}


def test_a_suggestion_becomes_a_lead_or_is_dismissed(alpha):
    with tenant_context(alpha):
        went = customer(alpha, "Lead me")
        trip(went, "Sanya 三亚", date(2025, 1, 30))
        other = customer(alpha, "Dismiss me")
        trip(other, "Harbin 哈尔滨", date(2025, 2, 1))
        services.suggestions_make(today=PLAN_DAY)
        mine, theirs = Suggestion.objects.get(customer=went), Suggestion.objects.get(customer=other)
        sales = staff(alpha, "sales")
        with pytest.raises(PermissionDenied):
            services.suggestion_dismiss(actor=staff(alpha, "finance"), suggestion=mine)
        opportunity = services.suggestion_to_lead(actor=sales, suggestion=mine, destination="Phuket")
        assert (opportunity.customer, opportunity.destination, opportunity.depart_on, opportunity.return_on) == (
            went, "Phuket", date(2026, 2, 15), date(2026, 2, 23))
        assert opportunity.owner == sales and "Spring Festival" in opportunity.title
        mine.refresh_from_db()
        assert mine.status == Suggestion.Status.LEAD and mine.opportunity == opportunity and mine.task.done_at
        with pytest.raises(ValidationError):
            services.suggestion_dismiss(actor=sales, suggestion=mine)
        services.suggestion_dismiss(actor=sales, suggestion=theirs)
        theirs.refresh_from_db()
        assert theirs.status == Suggestion.Status.DISMISSED and theirs.closed_by == sales and theirs.task.done_at


# --- win-back -------------------------------------------------------------------------------------

def _lapsed(agency, name, *, trips=2, last_days_ago=400, owner_role="sales") -> Customer:
    made = customer(agency, name, owner_role=owner_role)
    today = timezone.localdate()
    for n in range(trips):
        trip(made, "Bali", today - timedelta(days=last_days_ago + 4 + 200 * n))
    return made


def test_lapsed_and_declining_customers_are_identified_once(alpha):
    with tenant_context(alpha):
        lapsed = _lapsed(alpha, "Lapsed 流失")
        once = _lapsed(alpha, "One trip only", trips=1)
        recent = _lapsed(alpha, "Still travelling", last_days_ago=100)
        declining = _lapsed(alpha, "Declining VIP", trips=1, last_days_ago=60)
        now = timezone.now()
        CustomerValue.objects.create(customer=declining, first_trip_at=now - timedelta(days=400), last_trip_at=now,
                                     trips_total=1, revenue_total=Decimal("90000"), margin_total=Decimal("9000"),
                                     segment=CustomerValue.Segment.DECLINING)
        assert services.win_back_identify() == {"cases": 2, "tasks": 2}
        cases = {c.customer_id: c for c in WinBack.objects.all()}
        assert set(cases) == {lapsed.pk, declining.pk}
        assert cases[lapsed.pk].why == WinBack.Why.DORMANT and cases[lapsed.pk].trips_before == 2
        assert cases[lapsed.pk].last_trip_on == timezone.localdate() - timedelta(days=400)
        assert cases[declining.pk].why == WinBack.Why.DECLINING
        assert cases[lapsed.pk].task.kind == Task.Kind.WIN_BACK and cases[lapsed.pk].task.owner == staff(alpha, "sales")
        assert_made_as_task_create(cases[lapsed.pk].task)
        assert services.win_back_identify() == {"cases": 0, "tasks": 0}
        assert not WinBack.objects.filter(customer__in=[once, recent]).exists()
        with pytest.raises(IntegrityError), transaction.atomic():  # one open case per customer, in the database too
            WinBack.objects.create(customer=lapsed, why=WinBack.Why.DORMANT)


def test_reason_offer_lost_and_won_back(alpha):
    sales = staff(alpha, "sales")
    with tenant_context(alpha):
        back = _lapsed(alpha, "Comes back")
        gone = _lapsed(alpha, "Gone for good")
        services.win_back_identify()
        case, other = WinBack.objects.get(customer=back), WinBack.objects.get(customer=gone)
        with pytest.raises(ValidationError) as caught:
            services.win_back_record_reason(actor=sales, case=case, reason="cheaper", note="")
        assert set(caught.value.message_dict) == {"reason"}
        with pytest.raises(ValidationError) as caught:
            services.win_back_record_reason(actor=sales, case=case, reason=WinBack.Reason.UNKNOWN, note="")
        assert set(caught.value.message_dict) == {"note"}
        services.win_back_record_reason(actor=sales, case=case, reason=WinBack.Reason.COMPETITOR,
                                        note="Booked Ctrip packages 携程")
        with pytest.raises(ValidationError) as caught:
            services.win_back_offer(actor=sales, case=case, offer=" ", value="-5")
        assert set(caught.value.message_dict) == {"offer", "value"}
        services.win_back_offer(actor=sales, case=case, offer="10% off the next family trip", value="800")
        case.refresh_from_db()
        assert (case.status, case.reason, case.offer_value, case.offered_by) == (
            WinBack.Status.OFFERED, WinBack.Reason.COMPETITOR, Decimal("800.00"), sales)
        assert Contact.objects.filter(customer=back, summary__contains="10% off").exists()
        with pytest.raises(ValidationError) as caught:
            services.win_back_lose(actor=sales, case=other)
        assert set(caught.value.message_dict) == {"reason"}
        services.win_back_record_reason(actor=sales, case=other, reason=WinBack.Reason.NOT_TRAVELLING)
        services.win_back_lose(actor=sales, case=other, note="Retired")
        other.refresh_from_db()
        assert other.status == WinBack.Status.LOST and other.closed_by == sales and other.task.done_at
        with pytest.raises(ValidationError):
            services.win_back_offer(actor=sales, case=other, offer="Too late")
        # The customer confirms a new trip: the daily sweep closes the case as won back.
        new = trip(back, "Chiang Mai", timezone.localdate() + timedelta(days=30), confirmed_at=timezone.now())
        assert services.won_back_sweep() == 1
        case.refresh_from_db()
        assert case.status == WinBack.Status.WON_BACK and case.won_trip == new and case.closed_by is None
        assert case.task.done_at is not None
        assert Contact.objects.filter(customer=back, summary__contains="Chiang Mai").exists()
        assert services.won_back_sweep() == 0
        assert services.win_back_identify()["cases"] == 0  # neither is lapsed again
        summary = selectors.win_back_summary()
        assert (summary.won_back, summary.lost, summary.won_back_share) == (1, 1, 0.5)
        assert {r["reason"]: r["won_back"] for r in summary.by_reason} == {"competitor": 1, "not_travelling": 0}


def test_a_quote_does_not_win_a_customer_back(alpha):
    with tenant_context(alpha):
        back = _lapsed(alpha, "Only asking")
        services.win_back_identify()
        trip(back, "Phuket", timezone.localdate() + timedelta(days=20), status=Trip.Status.QUOTE)
        assert services.won_back_sweep() == 0
        assert WinBack.objects.get(customer=back).is_open


# --- referrals ------------------------------------------------------------------------------------

def test_referrals_qualify_with_the_first_trip_and_are_rewarded(alpha):
    sales = staff(alpha, "sales")
    with tenant_context(alpha):
        referrer = customer(alpha, "推荐人 Referrer")
        friend = customer(alpha, "Friend")
        travelled = customer(alpha, "Already travelled")
        first = trip(travelled, "Xi'an", timezone.localdate() - timedelta(days=40))
        merged = customer(alpha, "Merged")
        Customer.objects.filter(pk=merged.pk).update(merged_into=referrer)
        merged.refresh_from_db()
        with pytest.raises(ValidationError) as caught:
            services.referral_record(actor=sales, referrer=referrer, referred=referrer)
        assert set(caught.value.message_dict) == {"referred"}
        with pytest.raises(ValidationError) as caught:
            services.referral_record(actor=sales, referrer=merged, referred=None)
        assert set(caught.value.message_dict) == {"referrer", "referred"}
        with pytest.raises(PermissionDenied):
            services.referral_record(actor=staff(alpha, "finance"), referrer=referrer, referred=friend)
        pending = services.referral_record(actor=sales, referrer=referrer, referred=friend, note="同事 colleague")
        assert pending.status == Referral.Status.PENDING
        assert Contact.objects.filter(customer=referrer, summary__contains="Friend").exists()
        assert Contact.objects.filter(customer=friend, summary__contains="Referrer").exists()
        with pytest.raises(ValidationError) as caught:
            services.referral_record(actor=sales, referrer=travelled, referred=friend)
        assert "already recorded" in caught.value.message_dict["referred"][0]
        qualified = services.referral_record(actor=sales, referrer=referrer, referred=travelled)
        assert qualified.status == Referral.Status.QUALIFIED and qualified.qualifying_trip == first
        assert qualified.task.kind == Task.Kind.REFERRAL and qualified.task.owner == sales
        assert_made_as_task_create(qualified.task)
        with pytest.raises(ValidationError) as caught:
            services.referral_reward(actor=sales, referral=pending, description="Voucher")
        assert set(caught.value.message_dict) == {"status"}
        # The friend books: the daily run qualifies the referral, once.
        trip(friend, "Lijiang", timezone.localdate() + timedelta(days=10), confirmed_at=timezone.now())
        assert services.referrals_qualify() == {"qualified": 1, "tasks": 1}
        assert services.referrals_qualify() == {"qualified": 0, "tasks": 0}
        pending.refresh_from_db()
        assert pending.status == Referral.Status.QUALIFIED
        with pytest.raises(ValidationError) as caught:
            services.referral_reward(actor=sales, referral=pending, description="", value="1.005")
        assert set(caught.value.message_dict) == {"description", "value"}
        services.referral_reward(actor=sales, referral=pending, description="500元旅游券 travel voucher", value="500")
        pending.refresh_from_db()
        assert (pending.status, pending.reward_value, pending.rewarded_by) == (
            Referral.Status.REWARDED, Decimal("500.00"), sales)
        assert pending.task.done_at is not None
        assert Contact.objects.filter(customer=referrer, summary__contains="500元旅游券").exists()
        with pytest.raises(ValidationError):
            services.referral_reward(actor=sales, referral=pending, description="Twice")
        top = selectors.top_referrers()
        assert top[0]["id"] == referrer.pk and (top[0]["referred"], top[0]["travelled"], top[0]["rewarded"]) == (2, 2, 1)
        assert selectors.referral_counts() == {"total": 2, "pending": 0, "qualified": 1, "rewarded": 1}
        # A merged-away referrer drops out of the lists.
        Customer.objects.filter(pk=referrer.pk).update(merged_into=travelled)
        assert selectors.referral_counts()["total"] == 0 and selectors.top_referrers() == []


# --- the fence ------------------------------------------------------------------------------------

def test_each_agencys_jobs_touch_its_own_rows(alpha, bravo):
    with tenant_context(bravo):
        theirs = customer(bravo, "Bravo friend")
        referral = services.referral_record(actor=staff(bravo, "sales"), referrer=customer(bravo, "Bravo referrer"),
                                            referred=theirs)
        trip(theirs, "Sanya 三亚", date(2025, 1, 30))
        lapsed = _lapsed(bravo, "Bravo lapsed")
    with tenant_context(alpha):
        assert services.referrals_qualify() == {"qualified": 0, "tasks": 0}
        assert services.suggestions_make(today=PLAN_DAY)["suggestions"] == 0
        assert services.win_back_identify()["cases"] == 0
        assert services.daily_run(force=True)["referrals"]["qualified"] == 0
    with tenant_context(bravo):
        referral.refresh_from_db()
        assert referral.status == Referral.Status.PENDING
        assert not Suggestion.objects.exists() and not WinBack.objects.filter(customer=lapsed).exists()
        assert services.referrals_qualify()["qualified"] == 1
        assert services.suggestions_make(today=PLAN_DAY)["suggestions"] == 1
        assert services.win_back_identify()["cases"] == 1


# --- the demo -------------------------------------------------------------------------------------

def test_demo_care_automation_is_seeded_once(alpha):
    from crm.loyalty.demo import next_festival, seed_loyalty

    with tenant_context(alpha):
        Customer.objects.bulk_create([Customer(name=f"演示客户 {n}", owner=staff(alpha, "sales")) for n in range(40)])
    counts = seed_loyalty(alpha)
    assert counts["referrals"] == 6 and counts["rewarded"] == 2 and counts["win-back cases"] == 5
    assert counts["suggestions"] == 10
    with tenant_context(alpha):
        assert Referral.objects.filter(status=Referral.Status.QUALIFIED).count() == 2
        assert set(WinBack.objects.values_list("status", flat=True)) == {"won_back", "offered", "lost", "open"}
        assert WinBack.objects.exclude(reason="").count() == 4
        key, year = next_festival(timezone.localdate())
        assert Suggestion.objects.filter(festival=key, year=year).count() == 10
        assert all(s.destinations for s in Suggestion.objects.all())
    assert seed_loyalty(alpha) == {"referrals": 0, "rewarded": 0, "win-back cases": 0, "suggestions": 0}
