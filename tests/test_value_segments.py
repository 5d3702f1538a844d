"""Value segments, quadrants, payment behaviour and early warnings (R-VAL-2, R-VAL-4, R-VAL-5), on
small cases computed by hand in the comments."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from crm.care.models import Complaint
from crm.pipeline.models import Task
from crm.trips.models import Payment, Trip
from crm.value import selectors, services
from crm.value.models import CustomerValue, ValueWarning

from .test_value_scores import buyer, trip
from .task_checks import assert_made_as_task_create

pytestmark = pytest.mark.django_db


def ladder():
    """c0…c9: customer i has i+1 trips worth 1000(i+1) each (cost 500), the later i the more recent;
    X: ten trips of 20,000 (cost 500) 600 days ago, inside the 24-month window.

    Scores (1 + floor(5 × percent rank) over the 11):
      R: c0..c9 = 1 2 2 3 3 4 4 5 5 5, X = 1     F: c0..c9 = 1 1 2 2 3 3 4 4 5 5, X = 5 (ties c9)
      M: c0..c9 = 1 1 2 2 3 3 4 4 5 5, X = 5
    """
    customers = [buyer(f"阶梯{i}") for i in range(10)]
    trips = {}
    for i, customer in enumerate(customers):
        for n in range(i + 1):
            trips[(i, n)] = trip(customer, days_ago=(10 - i) * 10 + n, sell=str(1000 * (i + 1)), cost="500")
    x = buyer("昔日大客户")
    for n in range(10):
        trip(x, days_ago=600 + n, sell="20000", cost="500")
    return customers, x, trips


def pay(trip_, amount: str, days_ago: int, kind=Payment.Kind.BALANCE):
    Payment.objects.create(trip=trip_, kind=kind, amount=Decimal(amount), currency="CNY",
                           received_on=timezone.localdate() - timedelta(days=days_ago))


def due(trip_, days_ago: int):
    Trip.objects.filter(pk=trip_.pk).update(balance_due_on=timezone.localdate() - timedelta(days=days_ago))


def test_segments_quadrants_and_late_payers(alpha):
    with tenant_context(alpha):
        c, x, trips = ladder()
        due(trips[(7, 0)], 40)  # c7: 8,000 due 40 days ago, nothing paid → 40 days late
        due(trips[(6, 0)], 30)  # c6: paid in full 35 days ago → on time
        pay(trips[(6, 0)], "7000", 35)
        due(trips[(8, 0)], 30)  # c8: half 40 days ago, the rest 20 days ago → 10 days late
        pay(trips[(8, 0)], "4500", 40, kind=Payment.Kind.DEPOSIT)
        pay(trips[(8, 0)], "4500", 20)
        services.value_run()
        rows = {row.customer_id: row for row in CustomerValue.objects.all()}
        v = [rows[customer.pk] for customer in c]
        assert [row.rfm for row in v] == ["111", "211", "222", "322", "333", "433", "444", "544", "555", "555"]
        assert rows[x.pk].rfm == "155"
        assert (v[7].days_late, v[7].late_payer) == (40, True)
        assert (v[6].days_late, v[6].late_payer) == (0, False)
        assert (v[8].days_late, v[8].late_payer) == (10, False)
        assert v[0].days_late is None
        S, Q = CustomerValue.Segment, CustomerValue.Quadrant
        # F + M (M one lower for a late payer): ≥ 8 with R ≥ 3 most valuable; ≥ 6 with R ≤ 2 declining;
        # ≥ 5 with R ≥ 3 growth; the rest low. c7 would be most valuable (4 + 4, R 5) but pays late: 7.
        assert [row.segment for row in v] == [S.LOW, S.LOW, S.LOW, S.LOW, S.GROWTH, S.GROWTH, S.MOST_VALUABLE,
                                             S.GROWTH, S.MOST_VALUABLE, S.MOST_VALUABLE]
        assert rows[x.pk].segment == S.DECLINING
        # Scale: M ≥ 4 large. Loyalty: F ≥ 3 and R ≥ 3 high.
        assert [row.quadrant for row in v] == [Q.SMALL_LOW] * 4 + [Q.SMALL_HIGH, Q.SMALL_HIGH, Q.LARGE_HIGH,
                                                                    Q.SMALL_HIGH, Q.LARGE_HIGH, Q.LARGE_HIGH]
        assert rows[x.pk].quadrant == Q.LARGE_LOW


def test_pareto_share_and_segment_summary(alpha):
    with tenant_context(alpha):
        for i in range(10):  # margins 1,000 … 10,000: the top two bring 19,000 of 55,000
            trip(buyer(f"帕累托{i}"), days_ago=10, sell=str(1000 * (i + 1) + 100), cost="100")
        services.value_run()
        pareto = selectors.pareto()
        assert pareto["customers"] == 10 and pareto["top_customers"] == 2
        assert pareto["top_margin"] == Decimal("19000") and pareto["margin"] == Decimal("55000")
        assert round(pareto["share"], 4) == round(19000 / 55000, 4)
        summary = {row["segment"]: row for row in selectors.segment_summary()}
        assert sum(row["customers"] for row in summary.values()) == 10
        assert sum(row["margin"] for row in summary.values()) == Decimal("55000")


def warnings_of(kind):
    return ValueWarning.objects.filter(kind=kind)


def test_spend_drop_warns_key_customers_once_per_episode(alpha, bravo):
    now = timezone.now()
    with tenant_context(bravo):
        quiet = buyer("Bravo key")
        trip(quiet, days_ago=500, sell="90000")
    with tenant_context(alpha):
        from accounts.models import User
        owner = User.objects.get(role="sales")
        people = []
        for i, sell in enumerate(["1000", "2000", "3000", "4000", "50000"]):  # 12–24 months ago
            person = buyer(f"重点{i}")
            person.owner = owner
            person.save(update_fields=["owner"])
            trip(person, days_ago=500, sell=sell)
            people.append(person)
        # Key line: the 80th percentile of 1,000 … 50,000 = 4,000 + 0.2 × 46,000 = 13,200 → only the last.
        assert services.value_run(now=now)["warnings"]["spend_drop"] == 1
        warning = warnings_of(ValueWarning.Kind.SPEND_DROP).get()
        assert warning.customer == people[4] and warning.closed_at is None
        assert warning.details == {"before": 50000.0, "recent": 0} or warning.details["before"] == 50000
        task = Task.objects.get(key=f"value-warning:{warning.pk}")
        assert task.owner == owner and task.customer == people[4] and task.kind == Task.Kind.VALUE_WARNING
        assert_made_as_task_create(task)
        # The next night: still dropped, nothing new.
        assert services.value_run(now=now + timedelta(days=1))["warnings"]["spend_drop"] == 0
        assert warnings_of(ValueWarning.Kind.SPEND_DROP).count() == 1
        assert Task.objects.filter(kind=Task.Kind.VALUE_WARNING).count() == 1
        # They book again (26,000 ≥ half of 50,000): the warning clears.
        trip(people[4], days_ago=0, sell="26000")
        services.value_run(now=now + timedelta(days=2))
        warning.refresh_from_db()
        assert warning.closed_at is not None
    with tenant_context(bravo):
        assert not ValueWarning.objects.exists()  # alpha's run only


def test_complaints_dormancy_and_at_risk(alpha):
    with tenant_context(alpha):
        angry, calm = buyer("投诉多"), buyer("投诉少")
        trip(angry, days_ago=20, sell="1000")
        for who, days in [(angry, 10), (angry, 30), (calm, 10), (calm, 100), (calm, 120)]:
            at = timezone.now() - timedelta(days=days)
            Complaint.objects.create(customer=who, category="other", description="不满意", deadline_at=at,
                                     currency="CNY", created_at=at)
        newly_dormant, long_gone = buyer("刚沉睡"), buyer("早已流失")
        trip(newly_dormant, days_ago=200, sell="1000")
        trip(long_gone, days_ago=400, sell="1000")
        opened = services.value_run()["warnings"]
        # angry: 2 in the last 90 days vs 0 before; calm: 1 vs 2 → no rise.
        assert opened["complaints"] == 1 and warnings_of("complaints").get().customer == angry
        # Dormant after 180 days; only a lapse of the last 90 days past that is news.
        assert opened["dormant"] == 1 and warnings_of("dormant").get().customer == newly_dormant
        # At risk: a repeat customer, still inside the dormancy line, whose P(alive) fell below 30 %.
        fading = buyer("渐行渐远")
        trip(fading, days_ago=150, sell="1000")
        trip(fading, days_ago=100, sell="1000")
        services.value_run()
        CustomerValue.objects.filter(customer=fading).update(p_alive=0.12)
        CustomerValue.objects.filter(customer=angry).update(p_alive=0.05)  # one trip: not a repeat customer
        assert services.warnings_run()["at_risk"] == 1
        warning = warnings_of("at_risk").get()
        assert warning.customer == fading and warning.details == {"p_alive": 12}
        assert services.warnings_run()["at_risk"] == 0
