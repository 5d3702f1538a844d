"""Trips (R-SALE-3 … 5): quote → order, status transitions, margin, payment arithmetic with refunds,
the deposit hand-over to the pipeline, document checklists, visa cancellation and the nightly completion."""
from datetime import date, datetime
from datetime import timezone as dt_timezone
from unittest import mock
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from crm.customers import services as crm_services
from crm.customers.models import ChangeLog, Contact, Customer
from crm.pipeline import services as pipeline
from crm.pipeline.models import Opportunity, Stage, Task
from crm.trips import selectors, services
from crm.trips.models import ChecklistItem, Traveler, Trip

from .conftest import staff

pytestmark = pytest.mark.django_db
S = Trip.Status
TODAY = date(2031, 5, 10)


# --- helpers shared by the trips tests ------------------------------------------------------------

def person(name="王芳", **kw) -> Customer:
    return crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name=name, **kw)


def company(name="环球贸易有限公司") -> Customer:
    return crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name=name, kind=Customer.Kind.COMPANY)


def opportunity(customer, *, code="new", owner=None, **kw) -> Opportunity:
    kw.setdefault("title", "日本赏樱 7 天")
    kw.setdefault("destination", "Japan")
    kw.setdefault("depart_on", date(2031, 4, 1))
    kw.setdefault("return_on", date(2031, 4, 8))
    return Opportunity.objects.create(customer=customer, currency="CNY", stage=Stage.objects.get(code=code),
                                      owner=owner, **kw)


def trip_with_items(agency, *, sell="10000.00", cost="8000.00", status=S.CONFIRMED, **kw) -> Trip:
    """A trip of ``agency`` (call inside its tenant_context) with one hotel item."""
    kw.setdefault("depart_on", date(2031, 6, 1))
    kw.setdefault("return_on", date(2031, 6, 8))
    trip = services.trip_create(actor=None, customer=kw.pop("customer", None) or person(), title="Hainan",
                                status=status, **kw)
    services.item_add(actor=None, trip=trip, kind="hotel", description="Sanya resort", cost=Decimal(cost),
                      sell=Decimal(sell))
    return trip


def pay(trip, kind="deposit", amount="1000.00", actor=None, **kw):
    return services.payment_record(actor=actor, trip=trip, kind=kind, amount=Decimal(amount), method="bank",
                                   received_on=kw.pop("received_on", TODAY), **kw)


# --- quote → order --------------------------------------------------------------------------------

def test_quote_from_opportunity_copies_fields_and_moves_to_quoted(alpha):
    with tenant_context(alpha):
        sales = staff(alpha, "sales")
        wang = person()
        opp = opportunity(wang, owner=sales)
        trip = services.quote_from_opportunity(actor=sales, opportunity=opp)
        assert (trip.status, trip.customer, trip.title, trip.destination, trip.owner) == (
            S.QUOTE, wang, "日本赏樱 7 天", "Japan", sales)
        assert (trip.depart_on, trip.return_on, trip.currency) == (date(2031, 4, 1), date(2031, 4, 8), alpha.currency)
        assert trip.balance_due_on == date(2031, 3, 2)  # 30 days before departure
        assert [(t.customer, t.is_lead) for t in trip.travelers.all()] == [(wang, True)]
        opp.refresh_from_db()
        assert opp.stage.code == "quoted"
        with pytest.raises(ValidationError, match="already has a quote"):
            services.quote_from_opportunity(actor=sales, opportunity=opp)


def test_quote_for_a_company_has_no_traveler_and_never_moves_backwards(alpha):
    with tenant_context(alpha):
        opp = opportunity(company(), code="quoted")
        later = Stage.objects.create(code="", name="Negotiating", kind="open", position=35)
        Opportunity.objects.filter(pk=opp.pk).update(stage=later)
        trip = services.quote_from_opportunity(actor=None, opportunity=opp)
        assert trip.travelers.count() == 0
        opp.refresh_from_db()
        assert opp.stage == later


@pytest.mark.parametrize("with_quote", [True, False], ids=["quote-confirmed", "no-quote-made"])
def test_won_opportunity_becomes_the_confirmed_order(alpha, with_quote):
    with tenant_context(alpha):
        opp = opportunity(person(), owner=staff(alpha, "sales"))
        quote = services.quote_from_opportunity(actor=None, opportunity=opp) if with_quote else None
        pipeline.opportunity_move(actor=None, opportunity=opp, to=pipeline.stage_of("won"))
        trip = Trip.objects.get(opportunity=opp)
        assert trip.status == S.CONFIRMED and trip.confirmed_at is not None
        assert trip.title == "日本赏樱 7 天" and trip.travelers.count() == 1
        if quote:
            assert trip.pk == quote.pk


def test_lost_opportunity_cancels_the_quote_with_the_reason(alpha):
    with tenant_context(alpha):
        opp = opportunity(person())
        trip = services.quote_from_opportunity(actor=None, opportunity=opp)
        pipeline.opportunity_move(actor=None, opportunity=opp, to=pipeline.stage_of("lost"), lost_reason="price",
                                  lost_note="Found cheaper online")
        trip.refresh_from_db()
        assert trip.status == S.CANCELLED and trip.cancelled_at
        assert trip.cancel_reason == "Price: Found cheaper online"
        # Reopened and quoted again: a new quote, the cancelled one stays on file.
        pipeline.opportunity_move(actor=None, opportunity=opp, to=Stage.objects.get(code="new"))
        again = services.quote_from_opportunity(actor=None, opportunity=opp)
        assert again.pk != trip.pk and again.status == S.QUOTE


def test_confirming_by_hand_wins_the_open_opportunity(alpha):
    with tenant_context(alpha):
        opp = opportunity(person())
        trip = services.quote_from_opportunity(actor=None, opportunity=opp)
        trip = services.trip_confirm(actor=None, trip=trip)
        opp.refresh_from_db()
        assert trip.status == S.CONFIRMED and opp.stage.kind == "won"


ALL_MOVES = [(a, b) for a in S.values for b in S.values if a != b]
LEGAL = {("quote", "confirmed"), ("quote", "cancelled"), ("confirmed", "completed"), ("confirmed", "cancelled")}


@pytest.mark.parametrize("start,to", ALL_MOVES, ids=[f"{a}->{b}" for a, b in ALL_MOVES])
def test_trip_transitions(alpha, start, to):
    with tenant_context(alpha):
        trip = services.trip_create(actor=None, customer=person(), title="Bali")
        Trip.objects.filter(pk=trip.pk).update(status=start)
        trip.refresh_from_db()
        move = {"confirmed": lambda: services.trip_confirm(actor=None, trip=trip),
                "completed": lambda: services.trip_complete(actor=None, trip=trip),
                "cancelled": lambda: services.trip_cancel(actor=None, trip=trip, reason="Visa refused"),
                "quote": lambda: services.check_transition(trip, "quote")}[to]
        if (start, to) in LEGAL:
            assert move().status == to
        else:
            with pytest.raises(pipeline.IllegalTransition):
                move()
            trip.refresh_from_db()
            assert trip.status == start


def test_cancel_needs_a_reason_and_closed_trips_refuse_items(alpha):
    with tenant_context(alpha):
        trip = trip_with_items(alpha)
        with pytest.raises(ValidationError, match="why"):
            services.trip_cancel(actor=None, trip=trip, reason=" ")
        services.trip_cancel(actor=None, trip=trip, reason="Typhoon")
        with pytest.raises(ValidationError, match="no longer be changed"):
            services.item_add(actor=None, trip=trip, kind="tour", description="Snorkelling", sell=100)
        with pytest.raises(ValidationError):
            services.item_remove(actor=None, item=trip.items.get())


# --- itinerary and margin -------------------------------------------------------------------------

def test_margin_arithmetic_is_decimal_to_the_cent(alpha):
    with tenant_context(alpha):
        trip = services.trip_create(actor=None, customer=person(), title="Tokyo")
        services.item_add(actor=None, trip=trip, kind="flight", description="CA929", cost="3000.10", sell="3333.33",
                          details={"carrier": "ca", "number": "929", "from_airport": "pvg", "to_airport": "nrt"})
        services.item_add(actor=None, trip=trip, kind="hotel", description="Park Hyatt", cost=Decimal("0.20"),
                          sell=Decimal("0.10"), details={"room_type": "Twin", "board": "B&B"})
        money = selectors.trip_money(trip)
        assert money["sell"] == Decimal("3333.43") and money["cost"] == Decimal("3000.30")
        assert money["margin"] == Decimal("333.13") and money["margin_pct"] == Decimal("9.99")
        flight = trip.items.get(kind="flight")
        assert flight.details == {"carrier": "CA", "number": "929", "from_airport": "PVG", "to_airport": "NRT"}
        assert flight.margin == Decimal("333.23")


def test_empty_trip_has_no_margin_percentage(alpha):
    with tenant_context(alpha):
        money = selectors.trip_money(services.trip_create(actor=None, customer=person(), title="Tokyo"))
        assert money["sell"] == Decimal("0.00") and money["margin_pct"] is None


@pytest.mark.parametrize("value", [1000.5, "1e3", "12.345", "-5", "abc", "NaN", True, Decimal("1.001")],
                         ids=["float", "exponent", "three-decimals", "negative", "text", "nan", "bool", "decimal-3dp"])
def test_money_input_refuses_floats_and_oddities(value):
    with pytest.raises(ValidationError):
        services.parse_money(value, field="amount")


def test_money_input_accepts_plain_decimals():
    assert services.parse_money("1234.5", field="amount") == Decimal("1234.50")
    assert services.parse_money(7, field="amount") == Decimal("7.00")
    assert services.parse_money(Decimal("0.10"), field="amount") == Decimal("0.10")


def test_visa_item_makes_a_visa_trip_with_document_checklists(alpha):
    with tenant_context(alpha):
        trip = services.trip_create(actor=None, customer=person(), title="Schengen")
        assert not trip.needs_visa
        services.item_add(actor=None, trip=trip, kind="visa", description="French visa", sell=900)
        trip.refresh_from_db()
        assert trip.needs_visa
        lead = trip.travelers.get()
        assert sorted(lead.checklist.values_list("document", flat=True)) == sorted(services.DEFAULT_DOCUMENTS)
        second = services.traveler_add(actor=None, trip=trip, customer=person("李雷"))
        assert second.checklist.count() == 5 and not second.is_lead


def test_travelers_unique_and_corporate_travelers_must_belong(alpha):
    with tenant_context(alpha):
        acme = company()
        li = person("李雷")
        outsider = person("韩梅梅")
        crm_services.employment_set(actor=None, company=acme, person=li)
        trip = services.trip_create(actor=None, customer=acme, title="Canton fair")
        traveler = services.traveler_add(actor=None, trip=trip, customer=li)
        assert traveler.company == acme and traveler.is_lead
        with pytest.raises(ValidationError, match="already travels"):
            services.traveler_add(actor=None, trip=trip, customer=li)
        with pytest.raises(ValidationError, match="not one of"):
            services.traveler_add(actor=None, trip=trip, customer=outsider)
        with pytest.raises(ValidationError, match="people, not companies"):
            services.traveler_add(actor=None, trip=trip, customer=acme)
        crm_services.employment_set(actor=None, company=acme, person=outsider)
        second = services.traveler_add(actor=None, trip=trip, customer=outsider, is_lead=True)
        assert second.is_lead and not Traveler.objects.get(pk=traveler.pk).is_lead
        services.traveler_remove(actor=None, traveler=second)
        assert Traveler.objects.get(pk=traveler.pk).is_lead


# --- payments -------------------------------------------------------------------------------------

def test_deposit_balance_and_overpay(alpha):
    with tenant_context(alpha):
        trip = trip_with_items(alpha, sell="10000.00")
        deposit = pay(trip, "deposit", "3000.00")
        assert deposit.currency == alpha.currency and deposit.amount == Decimal("3000.00")
        pay(trip, "balance", "6999.99")
        money = selectors.trip_money(trip, today=date(2031, 5, 2))  # the balance is due on 2 May
        assert (money["paid"], money["due"], money["state"]) == (Decimal("9999.99"), Decimal("0.01"), "due")
        assert selectors.trip_money(trip, today=date(2031, 5, 3))["state"] == "overdue"
        with pytest.raises(ValidationError, match="overpay"):
            pay(trip, "balance", "0.02")
        pay(trip, "balance", "0.01")
        assert selectors.trip_money(trip, today=TODAY)["state"] == "paid"
        assert Contact.objects.filter(customer=trip.customer, channel="trip").count() == 3


def test_refunds_and_partial_refunds_up_to_the_limit(alpha):
    with tenant_context(alpha):
        trip = trip_with_items(alpha, sell="5000.00")
        deposit = pay(trip, "deposit", "2000.00")
        pay(trip, "refund", "500.00", refund_of=deposit)
        pay(trip, "refund", "1500.00", refund_of=deposit)
        with pytest.raises(ValidationError, match="At most CNY 0.00"):
            pay(trip, "refund", "0.01", refund_of=deposit)
        assert services.refundable(deposit) == Decimal("0.00")
        money = selectors.trip_money(trip, today=TODAY)
        assert (money["paid"], money["due"]) == (Decimal("0.00"), Decimal("5000.00"))


def test_refund_rules(alpha, bravo):
    with tenant_context(alpha):
        trip = trip_with_items(alpha)
        other = trip_with_items(alpha)
        deposit = pay(trip, "deposit", "1000.00")
        refund = pay(trip, "refund", "100.00", refund_of=deposit)
        with pytest.raises(ValidationError, match="cannot itself be refunded"):
            pay(trip, "refund", "10.00", refund_of=refund)
        with pytest.raises(ValidationError, match="Choose the payment"):
            pay(trip, "refund", "10.00")
        with pytest.raises(ValidationError, match="another trip"):
            pay(other, "refund", "10.00", refund_of=deposit)
        with pytest.raises(ValidationError, match="Only a refund"):
            pay(trip, "balance", "10.00", refund_of=deposit)
        with pytest.raises(ValidationError, match="At most"):
            pay(trip, "refund", "900.01", refund_of=deposit)
        # A cancelled trip takes refunds, not money in.
        services.trip_cancel(actor=None, trip=trip, reason="Visa refused")
        with pytest.raises(ValidationError, match="refunds only"):
            pay(trip, "balance", "10.00")
        pay(trip, "refund", "900.00", refund_of=deposit)
        assert selectors.trip_money(trip)["state"] == ""


@pytest.mark.parametrize("amount", [1000.0, "1e3", "10.001", "0", "-1"], ids=["float", "exp", "3dp", "zero", "neg"])
def test_payment_refuses_bad_amounts(alpha, amount):
    with tenant_context(alpha):
        trip = trip_with_items(alpha)
        with pytest.raises(ValidationError) as info:
            services.payment_record(actor=None, trip=trip, kind="deposit", amount=amount, method="bank",
                                    received_on=TODAY)
        assert "amount" in info.value.message_dict
        assert not trip.payments.exists()


def test_only_finance_records_payments(alpha):
    with tenant_context(alpha):
        trip = trip_with_items(alpha)
        with pytest.raises(PermissionDenied):
            pay(trip, actor=staff(alpha, "sales"))
        assert pay(trip, actor=staff(alpha, "finance")).recorded_by.role == "finance"


@pytest.mark.parametrize("due_on,paid,state", [
    (date(2031, 5, 9), "0.00", "overdue"), (date(2031, 5, 10), "0.00", "due"), (date(2031, 5, 9), "10000.00", "paid"),
    (None, "500.00", "due"),
], ids=["past-due-date", "due-today", "paid-in-full", "no-due-date"])
def test_paid_due_overdue(alpha, due_on, paid, state):
    with tenant_context(alpha):
        trip = trip_with_items(alpha, sell="10000.00", balance_due_on=due_on)
        Trip.objects.filter(pk=trip.pk).update(balance_due_on=due_on)
        if paid != "0.00":
            pay(trip, "deposit", paid)
        assert selectors.trip_money(trip, today=TODAY)["state"] == state
        listed = selectors.trip_list(filters={"payment": state}, today=TODAY)
        assert trip in listed


def test_overdue_uses_the_agency_time_zone(alpha, settings):
    settings.TIME_ZONE = "UTC"
    with tenant_context(alpha):
        # 20:00 UTC on the 9th is already the 10th in Shanghai.
        at = datetime(2031, 5, 9, 20, 0, tzinfo=dt_timezone.utc)
        with mock.patch("django.utils.timezone.now", return_value=at):
            assert services.agency_today() == date(2031, 5, 10)


def test_deposit_moves_the_opportunity_and_makes_one_task(alpha):
    with tenant_context(alpha):
        sales = staff(alpha, "sales")
        opp = opportunity(person(), owner=sales)
        trip = services.quote_from_opportunity(actor=sales, opportunity=opp)
        services.item_add(actor=sales, trip=trip, kind="tour", description="Kyoto", sell="8000", cost="6000")
        finance = staff(alpha, "finance")
        pay(trip, "deposit", "1000.00", actor=finance)
        pay(trip, "deposit", "500.00", actor=finance)
        opp.refresh_from_db()
        assert opp.stage.kind == "deposit"
        tasks = Task.objects.filter(trip=trip)
        assert tasks.count() == 1
        task = tasks.get()
        assert (task.kind, task.owner, task.key) == ("deposit_call", sales, f"deposit-call:{trip.pk}")
        assert task.due_at <= timezone.now()
        # Won later: the same trip is confirmed.
        pipeline.opportunity_move(actor=sales, opportunity=opp, to=pipeline.stage_of("won"))
        trip.refresh_from_db()
        assert trip.status == S.CONFIRMED


# --- checklist and visa cancellation ---------------------------------------------------------------

CHECK_MOVES = [(a, b) for a in ChecklistItem.Status.values for b in ChecklistItem.Status.values if a != b]
CHECK_LEGAL = {("required", "received"), ("received", "returned"), ("required", "waived"), ("received", "required")}


@pytest.mark.parametrize("start,to", CHECK_MOVES, ids=[f"{a}->{b}" for a, b in CHECK_MOVES])
def test_checklist_transitions(alpha, start, to):
    with tenant_context(alpha):
        trip = services.trip_create(actor=None, customer=person(), title="UK")
        services.item_add(actor=None, trip=trip, kind="visa", description="UK visa")
        item = ChecklistItem.objects.filter(traveler__trip=trip).first()
        ChecklistItem.objects.filter(pk=item.pk).update(status=start)
        actor = staff(alpha, "service")
        if (start, to) in CHECK_LEGAL:
            item = services.checklist_item_set_status(actor=actor, item=item, status=to)
            assert item.status == to and item.changed_by == actor
            assert bool(item.received_at) == (to == "received")  # an undo clears it
            assert bool(item.returned_at) == (to == "returned")
        else:
            with pytest.raises(pipeline.IllegalTransition):
                services.checklist_item_set_status(actor=actor, item=item, status=to)


def test_checklist_add_and_remove(alpha):
    with tenant_context(alpha):
        trip = services.trip_create(actor=None, customer=person(), title="UK")
        traveler = trip.travelers.get()
        with pytest.raises(ValidationError, match="which document"):
            services.checklist_item_add(actor=None, traveler=traveler, document="other")
        item = services.checklist_item_add(actor=None, traveler=traveler, document="household")
        services.checklist_item_remove(actor=None, item=item)
        assert not traveler.checklist.exists()


def test_visa_trip_completion_and_passport_return(alpha):
    with tenant_context(alpha):
        trip = trip_with_items(alpha)
        services.item_add(actor=None, trip=trip, kind="visa", description="Japan visa")
        plain = trip_with_items(alpha)
        services.trip_complete(actor=None, trip=trip)
        services.trip_complete(actor=None, trip=plain)
        traveler = trip.travelers.get()
        assert traveler.visa_cancellation == "awaiting"
        assert plain.travelers.get().visa_cancellation == ""
        with pytest.raises(pipeline.IllegalTransition):
            services.visa_cancellation_advance(actor=None, traveler=traveler, to="done")
        services.visa_cancellation_advance(actor=None, traveler=traveler, to="received")
        assert services.visa_cancellation_advance(actor=None, traveler=traveler, to="done").visa_cancellation == "done"
        with pytest.raises(pipeline.IllegalTransition):
            services.visa_cancellation_advance(actor=None, traveler=traveler, to="received")


def test_trips_complete_returned_in_bulk(alpha):
    with tenant_context(alpha):
        returned = trip_with_items(alpha, depart_on=date(2031, 5, 1), return_on=date(2031, 5, 9))
        services.item_add(actor=None, trip=returned, kind="visa", description="Visa")
        back_today = trip_with_items(alpha, depart_on=date(2031, 5, 1), return_on=TODAY)
        quote = trip_with_items(alpha, status=S.QUOTE, depart_on=date(2031, 5, 1), return_on=date(2031, 5, 2))
        cancelled = trip_with_items(alpha, depart_on=date(2031, 5, 1), return_on=date(2031, 5, 2))
        services.trip_cancel(actor=None, trip=cancelled, reason="x")
        assert services.trips_complete_returned(today=TODAY) == 1
        states = dict(Trip.objects.filter(pk__in=[returned.pk, back_today.pk, quote.pk, cancelled.pk])
                      .values_list("pk", "status"))
        assert states == {returned.pk: "completed", back_today.pk: "confirmed", quote.pk: "quote",
                          cancelled.pk: "cancelled"}
        assert Trip.objects.get(pk=returned.pk).completed_at is not None
        assert returned.travelers.get().visa_cancellation == "awaiting"
        assert services.trips_complete_returned(today=TODAY) == 0  # idempotent


def test_complete_returned_is_one_statement(alpha, django_assert_max_num_queries):
    with tenant_context(alpha):
        for _ in range(30):
            trip_with_items(alpha, depart_on=date(2031, 5, 1), return_on=date(2031, 5, 2))
        with django_assert_max_num_queries(1):
            assert services.trips_complete_returned(today=TODAY) >= 30
    connection.set_schema_to_public()


def test_screen_pop_shows_recent_trips_as_booker_and_traveler(alpha):
    from crm.customers.selectors import screen_pop

    with tenant_context(alpha):
        wang = person(phones=["13812345670"])
        mine = trip_with_items(alpha, customer=wang, depart_on=date(2031, 1, 1), return_on=date(2031, 1, 5))
        booker = person("李雷")
        as_traveler = trip_with_items(alpha, customer=booker, depart_on=date(2031, 3, 1), return_on=date(2031, 3, 5))
        services.traveler_add(actor=None, trip=as_traveler, customer=wang)
        for n in range(3):
            trip_with_items(alpha, customer=booker, depart_on=date(2032, 1, 1 + n), return_on=date(2032, 1, 5))
        rows = screen_pop(number="138 1234 5670")["trips"]
        assert [r["id"] for r in rows] == [as_traveler.pk, mine.pk]
        assert rows[0]["url"] == f"/trips/{as_traveler.pk}/" and rows[0]["reference"] == as_traveler.reference
        assert rows[0]["depart_on"] == date(2031, 3, 1) and rows[0]["status"] == as_traveler.status
