"""Nightly customer value (R-VAL-1, R-VAL-3): RFM quintiles within the agency over the window,
revenue or margin as the monetary value, lifetime value from the fitted model, the card, and one
agency's run never touching another's."""
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from crm.customers import services as crm_services
from crm.customers.models import ChangeLog
from crm.trips.models import ItineraryItem, Trip
from crm.value import services
from crm.value.models import CustomerValue, LifetimeFit, ValueSettings

pytestmark = pytest.mark.django_db


def buyer(name: str):
    return crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name=name)


def trip(customer, *, days_ago: int, sell: str, cost: str = "0", status=Trip.Status.CONFIRMED):
    at = timezone.now() - timedelta(days=days_ago)
    made = Trip.objects.create(customer=customer, title="Trip", currency="CNY", status=status, confirmed_at=at,
                               created_at=at)
    ItineraryItem.objects.create(trip=made, kind=ItineraryItem.Kind.OTHER, description="x", sell=Decimal(sell),
                                 cost=Decimal(cost))
    return made


def test_rfm_quintiles_and_value_to_date(alpha):
    with tenant_context(alpha):
        customers = [buyer(f"客户{i}") for i in range(10)]
        for i, customer in enumerate(customers):  # customer i: i + 1 trips, the last i days ago … more is better
            for n in range(i + 1):
                trip(customer, days_ago=(10 - i) * 10 + n, sell=str(1000 * (i + 1)), cost="500")
        old = buyer("老客户")
        trip(old, days_ago=800, sell="99999")  # outside the 24-month window
        trip(buyer("取消"), days_ago=5, sell="5000", status=Trip.Status.CANCELLED)  # cancelled: not a trip
        counts = services.value_run()
        assert counts["customers"] == 11
        best, worst = CustomerValue.objects.get(customer=customers[9]), CustomerValue.objects.get(customer=customers[0])
        assert best.rfm == "555" and worst.rfm == "111"
        assert best.trips_total == 10 and best.revenue_total == Decimal("100000") and best.margin_total == Decimal("95000")
        outside = CustomerValue.objects.get(customer=old)
        assert outside.r_score is None and outside.frequency == 0 and outside.revenue_total == Decimal("99999")
        assert not CustomerValue.objects.filter(customer__name="取消").exists()
        assert ValueSettings.objects.get().last_run_at is not None


def test_monetary_value_follows_the_setting(alpha):
    with tenant_context(alpha):
        cheap_high_margin, dear_low_margin = buyer("高利润"), buyer("低利润")
        trip(cheap_high_margin, days_ago=10, sell="2000", cost="200")
        trip(dear_low_margin, days_ago=10, sell="9000", cost="8900")
        for i in range(3):
            trip(buyer(f"其他{i}"), days_ago=10, sell="1000", cost="900")
        services.value_run()
        assert CustomerValue.objects.get(customer=cheap_high_margin).m_score > \
            CustomerValue.objects.get(customer=dear_low_margin).m_score  # margin by default
        ValueSettings.objects.update(monetary_basis=ValueSettings.Basis.REVENUE)
        services.value_run()
        assert CustomerValue.objects.get(customer=cheap_high_margin).m_score < \
            CustomerValue.objects.get(customer=dear_low_margin).m_score


def test_lifetime_value_is_fitted_per_agency_and_shown_on_the_card(alpha, bravo, page_client):
    with tenant_context(bravo):
        bravo_customer = buyer("Bravo")
        trip(bravo_customer, days_ago=3, sell="100")
    with tenant_context(alpha):
        # 120 customers drawn from a BG/NBD population (seeded): rate ~ Gamma(0.6, 1/8 per week),
        # drop-out after each trip ~ Beta(1, 3); first trips over the last 100 weeks.
        rng = np.random.default_rng(7)
        people, repeats = [], 0
        for i in range(120):
            person, rate, drop = buyer(f"旅客{i}"), rng.gamma(0.6, 1 / 8), rng.beta(1, 3)
            week = rng.uniform(0, 100)  # weeks ago
            while week > 0:
                trip(person, days_ago=int(week * 7), sell=str(2000 + 100 * (i % 7)), cost="1500")
                if rng.random() < drop:
                    break
                week -= rng.exponential(1 / rate)
                repeats += week > 0
            people.append(person)
        counts = services.value_run()
        assert counts["fitted"]
        fit = LifetimeFit.objects.get()
        assert fit.customers == 120 and fit.actual_repeat_trips == repeats
        assert 0.5 * fit.actual_repeat_trips < fit.expected_repeat_trips < 1.5 * fit.actual_repeat_trips
        rows = CustomerValue.objects.order_by("first_trip_at")
        frequent = max(rows, key=lambda row: (row.trips_total, row.last_trip_at))
        once = next(row for row in rows if row.trips_total == 1)  # the oldest one-trip customer
        assert frequent.expected_trips_12m > once.expected_trips_12m > 0 and 0 < frequent.p_alive <= 1
        assert frequent.p_alive > once.p_alive or once.p_alive == 1
        assert frequent.expected_value_12m > 0
        shown = frequent.customer
    html = page_client("alpha", "sales").get(f"/customers/{shown.pk}/").content.decode()
    assert 'data-test="value-card"' in html and 'data-test="rfm"' in html and 'data-test="ltv"' in html
    assert 'data-test="value-card"' not in page_client("alpha", "call_center").get(
        f"/customers/{shown.pk}/").content.decode()
    with tenant_context(bravo):
        assert not CustomerValue.objects.exists() and not LifetimeFit.objects.exists()  # alpha's run only


def test_too_few_customers_give_scores_but_no_predictions(alpha):
    with tenant_context(alpha):
        customer = buyer("王芳")
        trip(customer, days_ago=30, sell="3000")
        trip(customer, days_ago=3, sell="3000")
        counts = services.value_run()
        assert counts["customers"] == 1 and not counts["fitted"]
        row = CustomerValue.objects.get(customer=customer)
        assert row.rfm == "111" and row.expected_trips_12m is None and not LifetimeFit.objects.exists()
