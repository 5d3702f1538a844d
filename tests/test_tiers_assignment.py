"""Service tiers (R-TIER-1, R-TIER-2): definitions, the set-based nightly assignment with hysteresis,
manual overrides, history and owner notifications, and the fence between agencies."""
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django_tenants.utils import tenant_context

from crm.customers.models import Customer
from crm.pipeline.models import Task
from crm.tiers import selectors, services
from crm.tiers.demo import seed_tiers
from crm.tiers.models import CustomerTier, ServiceTier, TierChange, TierSettings
from crm.trips.models import Trip

from .care_factories import customer, user
from .tier_factories import booking, ladder, tier
from .task_checks import assert_made_as_task_create

pytestmark = pytest.mark.django_db


def tier_now(person) -> str | None:
    found = selectors.tier_of(person)
    return found.name if found else None


# --- definitions ----------------------------------------------------------------------------------

def test_tiers_are_ranked_in_the_order_made_and_can_be_reordered(alpha):
    with tenant_context(alpha):
        tiers = ladder()
        assert [t.rank for t in (tiers["gold"], tiers["silver"], tiers["standard"])] == [1, 2, 3]
        assert tiers["standard"].is_default and not tiers["gold"].is_default
        services.tier_move(actor=None, tier=tiers["standard"], up=True)
        assert list(ServiceTier.objects.values_list("name", flat=True)) == ["Gold", "Standard", "Silver"]
        services.tier_move(actor=None, tier=tiers["gold"], up=True)  # already first: nothing moves
        assert list(ServiceTier.objects.values_list("rank", flat=True)) == [1, 2, 3]
        services.tier_delete(actor=None, tier=tiers["standard"])
        assert list(ServiceTier.objects.values_list("name", "rank")) == [("Gold", 1), ("Silver", 2)]


@pytest.mark.parametrize("fields, field", [
    ({"name": " "}, "name"),
    ({"name": "gold"}, "name"),  # same name, another case
    ({"color": "gold"}, "color"),
    ({"color": "#12345g"}, "color"),
    ({"applies_to": "pets"}, "applies_to"),
    ({"min_spend_12m": "-1"}, "min_spend_12m"),
    ({"min_spend_month": "12.345"}, "min_spend_month"),
    ({"min_spend_12m": "lots"}, "min_spend_12m"),
    ({"min_trips_12m": -2}, "min_trips_12m"),
    ({"lead_response_hours": 0}, "lead_response_hours"),
    ({"complaint_response_hours": 9000}, "complaint_response_hours"),
    ({"outreach_days": 0}, "outreach_days"),
    ({"visit_cadence": "daily"}, "visit_cadence"),
], ids=lambda value: str(value))
def test_tier_definitions_are_checked_field_by_field(alpha, fields, field):
    with tenant_context(alpha):
        tier("Gold", min_spend_12m=Decimal(100000))
        with pytest.raises(ValidationError) as caught:
            services.tier_save(actor=None, **{"name": "Silver", **fields})
        assert field in caught.value.message_dict


def test_tier_settings_are_checked(alpha):
    with tenant_context(alpha):
        with pytest.raises(ValidationError) as caught:
            services.tier_settings_update(actor=None, hysteresis_percent=95, min_days_in_tier=-1, notify_owner=True)
        assert set(caught.value.message_dict) == {"hysteresis_percent", "min_days_in_tier"}
        rules = services.tier_settings_update(actor=None, hysteresis_percent=20, min_days_in_tier=7, notify_owner=False)
        assert (rules.hysteresis_percent, rules.min_days_in_tier, rules.notify_owner) == (20, 7, False)


# --- measures and the assignment ------------------------------------------------------------------

def test_spend_counts_confirmed_and_completed_trips_of_the_buyer_in_the_windows(alpha):
    with tenant_context(alpha):
        tiers = ladder()
        wang = customer("王芳")
        booking(wang, "60000.50", days_ago=20, lines=4)
        booking(wang, 30000, days_ago=200, status=Trip.Status.COMPLETED)
        booking(wang, 900000, days_ago=5, status=Trip.Status.QUOTE)  # not bought
        booking(wang, 900000, days_ago=5, status=Trip.Status.CANCELLED)
        booking(wang, 900000, days_ago=400)  # older than 12 months
        booking(wang, 10000, days_ago=30, confirmed=False)  # no confirmed_at: dated by created_at
        result = services.assignment_run()
        status = CustomerTier.objects.get(customer=wang)
        assert status.spend_12m == Decimal("100000.50")
        assert status.trips_12m == 3
        assert status.tier == tiers["gold"] and status.computed_tier == tiers["gold"]
        assert result["customers"] >= 1


def test_monthly_spend_is_the_last_full_calendar_month_in_the_agency_time_zone(alpha):
    with tenant_context(alpha):
        tier("Monthly", min_spend_month=Decimal(5000))
        tier("Standard")
        zone = ZoneInfo(alpha.time_zone)
        now = datetime(2025, 3, 10, 12, 0, tzinfo=zone)
        inside, before, after = customer("Inside"), customer("Before"), customer("After")
        booking(inside, 6000, at=datetime(2025, 2, 1, 0, 30, tzinfo=zone))  # 1 Feb, local time
        booking(before, 6000, at=datetime(2025, 1, 31, 23, 30, tzinfo=zone))
        booking(after, 6000, at=datetime(2025, 3, 1, 0, 10, tzinfo=zone))
        services.assignment_run(now=now)
        assert CustomerTier.objects.get(customer=inside).spend_month == Decimal(6000)
        assert (tier_now(inside), tier_now(before), tier_now(after)) == ("Monthly", "Standard", "Standard")


def test_criteria_combine_and_apply_to_individuals_or_companies(alpha):
    with tenant_context(alpha):
        tier("Corporate Gold", applies_to=ServiceTier.AppliesTo.COMPANY, min_spend_12m=Decimal(50000), min_trips_12m=3)
        tier("Frequent", applies_to=ServiceTier.AppliesTo.PERSON, min_trips_12m=2)
        tier("Standard")
        acme = customer("ACME", kind=Customer.Kind.COMPANY)
        small = customer("Small Co", kind=Customer.Kind.COMPANY)
        li = customer("李雷")
        for _ in range(3):
            booking(acme, 20000)
            booking(li, 20000)
        booking(small, 90000)  # spend, but one trip only
        services.assignment_run()
        assert (tier_now(acme), tier_now(small), tier_now(li)) == ("Corporate Gold", "Standard", "Frequent")


def test_a_value_segment_criterion_takes_the_nightly_segment(alpha):
    from crm.value import services as value_services
    from crm.value.models import CustomerValue

    with tenant_context(alpha):
        tier("Key", value_segments=["declining", "most_valuable"])
        tier("Standard")
        assert ServiceTier.objects.get(name="Key").value_segment_labels == ["Most valuable", "Declining"]
        people = [customer(f"客户{i}") for i in range(10)]
        for i, person in enumerate(people):  # more and bigger trips, more recently, the later i
            for n in range(i + 1):
                booking(person, 1000 * (i + 1), days_ago=(10 - i) * 10 + n)
        value_services.value_run()
        services.assignment_run()
        top = {c.customer_id for c in CustomerValue.objects.filter(segment="most_valuable")}
        assert top and all(tier_now(p) == ("Key" if p.pk in top else "Standard") for p in people)
        with pytest.raises(ValidationError) as caught:
            services.tier_save(actor=None, name="Odd", value_segments=["vip"])
        assert "value_segments" in caught.value.message_dict


def test_a_second_run_with_nothing_changed_writes_nothing(alpha):
    with tenant_context(alpha):
        ladder()
        for n in range(5):
            booking(customer(f"C{n}"), 25000 * n)
        first = services.assignment_run()
        assert first["written"] >= 5 and first["changes"] >= 5
        changes = TierChange.objects.count()
        second = services.assignment_run()
        assert second["written"] == 0 and second["changes"] == 0 and second["tasks"] == 0
        assert TierChange.objects.count() == changes


def test_no_default_tier_means_no_tier_for_those_who_meet_nothing(alpha):
    with tenant_context(alpha):
        tier("Gold", min_spend_12m=Decimal(100000))
        nobody = customer("Nobody")
        services.assignment_run()
        assert selectors.tiers_for([nobody.pk]) == {}
        assert CustomerTier.objects.get(customer=nobody).tier is None


# --- hysteresis -----------------------------------------------------------------------------------

def test_upgrade_is_immediate_and_downgrade_waits_for_margin_and_minimum_days(alpha):
    """Gold needs 100,000 a year; margin 10 %, 30 days minimum."""
    with tenant_context(alpha):
        ladder()
        owner = user(alpha, "sales")
        zhang = customer("张伟", owner=owner)
        now = timezone.now()
        trip = booking(zhang, 20000, at=now - timedelta(days=100))
        services.assignment_run(now=now)
        assert tier_now(zhang) == "Silver"
        booking(zhang, 80000, at=now - timedelta(days=1))  # 100,000: Gold at once
        services.assignment_run(now=now)
        assert tier_now(zhang) == "Gold"
        gold_since = CustomerTier.objects.get(customer=zhang).since

        trip.items.update(sell=Decimal(12000))  # 92,000: under the threshold, within the 10 % margin
        for days in (1, 40, 80):
            services.assignment_run(now=now + timedelta(days=days))
            assert tier_now(zhang) == "Gold", days
        trip.items.update(sell=Decimal(5000))  # 85,000: below 90,000, and Gold for more than 30 days
        services.assignment_run(now=now + timedelta(days=81))
        assert tier_now(zhang) == "Silver"
        status = CustomerTier.objects.get(customer=zhang)
        assert status.since == now + timedelta(days=81) and status.since > gold_since
        whys = list(TierChange.objects.filter(customer=zhang).order_by("at", "id").values_list("from_name", "to_name", "why"))
        assert whys == [("", "Silver", "automatic"), ("Silver", "Gold", "automatic"), ("Gold", "Silver", "automatic")]
        last = TierChange.objects.filter(customer=zhang).first()
        assert (last.spend_12m, last.trips_12m) == (Decimal(85000), 2)


def test_no_downgrade_before_the_minimum_days_even_far_below_the_threshold(alpha):
    with tenant_context(alpha):
        ladder()
        now = timezone.now()
        wu = customer("吴")
        trip = booking(wu, 150000, at=now - timedelta(days=3))
        services.assignment_run(now=now)
        assert tier_now(wu) == "Gold"
        trip.items.update(sell=0)
        services.assignment_run(now=now + timedelta(days=29))
        assert tier_now(wu) == "Gold"
        services.assignment_run(now=now + timedelta(days=31))
        assert tier_now(wu) == "Standard"


def test_no_flapping_around_a_threshold(alpha):
    """Spend wobbling a little around Silver's 20,000 changes the tier once, not every night."""
    with tenant_context(alpha):
        ladder()
        services.tier_settings_update(actor=None, hysteresis_percent=10, min_days_in_tier=0, notify_owner=True)
        now = timezone.now()
        ma = customer("马")
        trip = booking(ma, 20500, at=now - timedelta(days=5))
        for day, sell in enumerate([20500, 19500, 20100, 18900, 20300, 19000, 18500]):
            trip.items.update(sell=Decimal(sell))
            services.assignment_run(now=now + timedelta(days=day))
            assert tier_now(ma) == "Silver", (day, sell)
        trip.items.update(sell=Decimal(17900))  # below 18,000: leaves Silver
        services.assignment_run(now=now + timedelta(days=10))
        assert tier_now(ma) == "Standard"
        assert TierChange.objects.filter(customer=ma).count() == 2


# --- overrides ------------------------------------------------------------------------------------

def test_an_override_wins_over_the_criteria_and_is_kept_by_the_nightly_run(alpha):
    with tenant_context(alpha):
        tiers = ladder()
        manager, owner = user(alpha, "manager"), user(alpha, "sales")
        vip = customer("VIP", owner=owner)
        services.assignment_run()
        assert tier_now(vip) == "Standard"
        services.override_set(actor=manager, customer=vip, tier=tiers["gold"], reason="Board member's family")
        assert tier_now(vip) == "Gold"
        services.assignment_run(now=timezone.now() + timedelta(days=60))
        status = CustomerTier.objects.get(customer=vip)
        assert status.tier == tiers["gold"] and status.computed_tier == tiers["standard"]
        change = TierChange.objects.filter(customer=vip).first()
        assert (change.why, change.by, change.note, change.from_name, change.to_name) == (
            TierChange.Why.OVERRIDE, manager, "Board member's family", "Standard", "Gold")
        task = Task.objects.get(key=f"tier-change:{change.pk}")
        assert task.kind == Task.Kind.TIER_CHANGE and task.owner == owner and "VIP" in task.title


def test_an_expired_override_is_removed_by_the_job_and_the_computed_tier_returns(alpha):
    with tenant_context(alpha):
        tiers = ladder()
        manager = user(alpha, "manager")
        guest = customer("Guest", owner=user(alpha, "sales"))
        booking(guest, 25000)
        services.assignment_run()
        today = timezone.localdate()
        services.override_set(actor=manager, customer=guest, tier=tiers["gold"], reason="Trial", until=today + timedelta(days=7))
        with timezone.override(alpha.time_zone):
            services.assignment_run(now=timezone.now() + timedelta(days=7))  # the last day: still on
        assert tier_now(guest) == "Gold"
        result = services.assignment_run(now=timezone.now() + timedelta(days=9))
        status = CustomerTier.objects.get(customer=guest)
        assert status.tier == tiers["silver"] and not status.has_override and status.override_reason == ""
        ended = TierChange.objects.filter(customer=guest).first()
        assert (ended.why, ended.from_name, ended.to_name, ended.note) == ("override_ended", "Gold", "Silver", "Trial")
        assert result["tasks"] == 1 and Task.objects.filter(key=f"tier-change:{ended.pk}").exists()


def test_override_rules(alpha):
    with tenant_context(alpha):
        tiers = ladder()
        person = customer("Rules")
        with pytest.raises(ValidationError) as caught:
            services.override_set(actor=user(alpha, "manager"), customer=person, tier=None, reason=" ",
                                  until=timezone.localdate())
        assert set(caught.value.message_dict) == {"tier", "reason", "until"}
        for role in ("sales", "service", "call_center", "finance"):
            with pytest.raises(PermissionDenied):
                services.override_set(actor=user(alpha, role), customer=person, tier=tiers["gold"], reason="Why not")
        with pytest.raises(ValidationError):
            services.override_remove(actor=user(alpha, "admin"), customer=person)


def test_removing_an_override_falls_back_and_is_recorded(alpha):
    with tenant_context(alpha):
        tiers = ladder()
        admin = user(alpha, "admin")
        person = customer("Back")
        services.assignment_run()
        services.override_set(actor=admin, customer=person, tier=tiers["silver"], reason="Goodwill")
        services.override_remove(actor=admin, customer=person)
        assert tier_now(person) == "Standard"
        assert [c.why for c in TierChange.objects.filter(customer=person)] == ["override_ended", "override", "automatic"]


# --- notifications --------------------------------------------------------------------------------

def test_tier_changes_notify_the_owner_once_and_only_when_enabled(alpha):
    with tenant_context(alpha):
        ladder()
        owner = user(alpha, "sales")
        rich, unowned = customer("Rich", owner=owner), customer("Unowned")
        services.assignment_run()  # first placement: not a change anybody needs a task for
        assert not Task.objects.filter(kind=Task.Kind.TIER_CHANGE).exists()
        booking(rich, 200000)
        booking(unowned, 200000)
        result = services.assignment_run()
        assert result["moves"] == 2 and result["tasks"] == 1
        task = Task.objects.get(kind=Task.Kind.TIER_CHANGE)
        assert task.owner == owner and task.customer == rich and "Standard → Gold" in task.title
        assert "CNY 200,000.00" in task.notes
        assert_made_as_task_create(task)
        services.assignment_run()
        assert Task.objects.filter(kind=Task.Kind.TIER_CHANGE).count() == 1

        TierSettings.objects.update(notify_owner=False, min_days_in_tier=0, hysteresis_percent=0)
        Trip.objects.filter(customer=rich).update(status=Trip.Status.CANCELLED)
        assert services.assignment_run()["moves"] == 1  # Gold → Standard, nobody told
        assert Task.objects.filter(kind=Task.Kind.TIER_CHANGE).count() == 1


# --- jobs and agencies ----------------------------------------------------------------------------

def test_nightly_run_is_due_once_a_day_from_two_in_the_agency_time_zone(alpha):
    with tenant_context(alpha):
        zone = ZoneInfo(alpha.time_zone)
        ladder()
        assert not services.assignment_due(now=datetime(2025, 5, 1, 1, 50, tzinfo=zone))
        night = datetime(2025, 5, 1, 2, 23, tzinfo=zone)
        assert services.assignment_due(now=night)
        assert services.assignment_nightly(now=night) is not None
        assert services.assignment_nightly(now=night + timedelta(hours=5)) is None  # done today
        assert services.assignment_due(now=night + timedelta(days=1))


def test_one_agency_assignment_never_touches_another(alpha, bravo):
    with tenant_context(bravo):
        ladder()
        bravo_customer = customer("Bravo person")
        booking(bravo_customer, 500000)
    with tenant_context(alpha):
        ladder()
        alpha_customer = customer("Alpha person")
        result = services.assignment_run()
        assert result["customers"] == Customer.objects.filter(merged_into__isnull=True).count()
        assert selectors.tiers_for([bravo_customer.pk]).get(bravo_customer.pk) is None or \
            bravo_customer.pk == alpha_customer.pk
    with tenant_context(bravo):
        assert not CustomerTier.objects.exists() and not TierChange.objects.exists()


def test_demo_tiers_are_seeded_once_and_assigned(alpha):
    with tenant_context(alpha):
        rich = customer("Demo rich")
        booking(rich, 600000)
    result = seed_tiers(alpha)
    assert result["customers"] >= 1
    with tenant_context(alpha):
        assert ServiceTier.objects.count() == 4
        assert selectors.tier_of(rich).rank == 1
    seed_tiers(alpha)
    with tenant_context(alpha):
        assert ServiceTier.objects.count() == 4


def test_a_freshly_seeded_demo_agency_has_customers_in_more_than_one_tier(alpha):
    """Issue 20: seed_demo assigned tiers before it seeded the trade history, so every demo customer was
    "Standard" until someone pressed "Recompute". The trade history step now assigns them after it."""
    from crm.customers.demo import seed_customers
    from tenants.management.commands.seed_demo import seed_trade_history

    with tenant_context(alpha):
        seed_customers(alpha, people=80, companies=4)
    seed_tiers(alpha)  # seed_demo's order: tiers first, with nobody having bought anything yet
    with tenant_context(alpha):
        assert set(CustomerTier.objects.values_list("tier__name", flat=True).distinct()) == {"Standard"}
        counts = seed_trade_history(alpha, buyers=80)
        assert counts["trips"] and counts["tiers"]["customers"] >= 80
        tiers = set(CustomerTier.objects.values_list("tier__name", flat=True).distinct())
        assert len(tiers) > 1 and "Standard" in tiers, tiers
        assert seed_trade_history(alpha, buyers=80) == {"trips": 0}  # seeded once
