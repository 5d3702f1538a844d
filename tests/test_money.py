"""caravan.money: one parser, one maximum. The same bad amount gets the same answer on the trip
payment page and API, the policy document and the policy check, and from the services' own parsers."""
import ast
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import tenant_context

from caravan import money
from crm.campaigns import services as campaigns
from crm.care import services as care
from crm.loyalty.services import common as loyalty
from crm.tiers import services as tiers

from .policy_factories import RULES, flight_offer
from .test_policies_api import check_body, setup_case
from .test_trips_services import trip_with_items

FORMAT = "Give an amount such as 1234.50 (at most two decimals)."
TOO_LARGE = "The amount is too large."
NEGATIVE = "The amount cannot be negative."
NOT_POSITIVE = "The amount must be more than zero."

# input, the answer where an amount must be more than zero (a payment), where zero is allowed (a fare)
BAD = [
    ("NaN", FORMAT, FORMAT),
    ("Infinity", FORMAT, FORMAT),
    ("1e400", FORMAT, FORMAT),
    ("1e3", FORMAT, FORMAT),
    ("12.345", FORMAT, FORMAT),
    ("1,234.50", FORMAT, FORMAT),
    ("abc", FORMAT, FORMAT),
    ("10000000000.00", TOO_LARGE, TOO_LARGE),
    ("-5", NOT_POSITIVE, NEGATIVE),
]


@pytest.mark.parametrize("value, expected", [
    ("1234.5", Decimal("1234.50")), (" 7 ", Decimal("7.00")), (7, Decimal("7.00")), ("-0", Decimal("0.00")),
    (Decimal("0.10"), Decimal("0.10")), ("-12.30", Decimal("-12.30")), ("9999999999.99", money.MAX_AMOUNT),
], ids=["one-decimal", "spaces", "int", "minus-zero", "decimal", "negative", "maximum"])
def test_to_money_accepts_plain_amounts(value, expected):
    amount = money.to_money(value)
    assert amount == expected and str(amount) == str(expected)


@pytest.mark.parametrize("value, too_large", [
    (1000.5, False), (True, False), (None, False), ("", False), ("1e3", False), ("+5", False), ("1_000", False),
    (".5", False), ("12.345", False), ("NaN", False), (Decimal("NaN"), False), (Decimal("Infinity"), False),
    (Decimal("1.001"), False), (Decimal("1e-400"), False), (Decimal("1e400"), True), ("10000000000", True),
    (10 ** 12, True), ("-10000000000", True),
], ids=["float", "bool", "none", "empty", "exponent", "plus", "underscore", "no-units", "three-decimals", "nan-text",
        "nan", "infinity", "decimal-3dp", "tiny", "huge", "above-max", "int-above-max", "below-minus-max"])
def test_to_money_refuses_everything_else(value, too_large):
    with pytest.raises(ValueError) as refused:
        money.to_money(value)
    assert refused.value.too_large is too_large


def test_the_money_module_imports_no_django():
    """The policy engine (no Django) imports it."""
    tree = ast.parse(Path(money.__file__).read_text())
    top = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = [alias.name for node in top for alias in node.names] + [node.module or "" for node in top
                                                                   if isinstance(node, ast.ImportFrom)]
    assert names and not any(name.startswith("django") for name in names)


@pytest.mark.parametrize("value, positive, zero_allowed", BAD, ids=[b[0] for b in BAD])
def test_parse_money_answers_per_field(value, positive, zero_allowed):
    for flags, expected in (({}, positive), ({"allow_zero": True}, zero_allowed)):
        with pytest.raises(ValidationError) as refused:
            money.parse_money(value, field="fare", **flags)
        assert refused.value.message_dict == {"fare": [expected]}
    assert money.parse_money("-5", field="x", allow_negative=True) == Decimal("-5.00")
    with pytest.raises(ValidationError):
        money.parse_money("0", field="x", allow_negative=True)


def test_the_same_bad_amount_gets_the_same_answer_on_every_path(alpha, api_client, page_client):
    """Trip payment (API and page), policy document (API), policy check (API)."""
    with tenant_context(alpha):
        trip = trip_with_items(alpha)
    account, _boss, traveler, *_rest = setup_case(alpha)
    finance, finance_page = api_client("alpha", "finance"), page_client("alpha", "finance")
    manager, sales = api_client("alpha", "manager"), api_client("alpha", "sales")
    payment = {"kind": "deposit", "method": "bank", "received_on": "2031-01-02"}

    def answers(value, *, page: bool = True) -> dict:
        got = {
            "payment api": finance.post(f"/api/v1/trips/{trip.pk}/payments/", {**payment, "amount": value},
                                        format="json").json()["error"]["fields"]["amount"],
            "document api": manager.post("/api/v1/travel-policies/", {"account": account.pk, "rules": {
                **RULES, "hotel_caps": [{"city_tier": 1, "nightly_cap": value}]}}, format="json"
            ).json()["error"]["fields"]["hotel_caps.0.nightly_cap"],
            "check api": sales.post("/api/v1/policy-check", check_body(
                account, traveler, offer={**flight_offer(), "fare": value}), format="json"
            ).json()["error"]["fields"]["offer.fare"],
        }
        if page:
            html = finance_page.post(f"/trips/{trip.pk}/payments/", {**payment, "amount": value}).content.decode()
            got["payment page"] = [m for m in (FORMAT, TOO_LARGE, NOT_POSITIVE) if m in html]
        return got

    for value, positive, zero_allowed in BAD:
        assert answers(value) == {"payment api": [positive], "payment page": [positive],
                                  "document api": [zero_allowed], "check api": [zero_allowed]}, value
    # A JSON number with a fraction is a float: refused everywhere rather than rounded.
    assert answers(1800.5, page=False) == {"payment api": [FORMAT], "document api": [FORMAT], "check api": [FORMAT]}


def test_the_services_own_parsers_share_the_one_maximum(alpha):
    over, top = "10000000000.00", "9999999999.99"
    with tenant_context(alpha):
        for parse in (loyalty.parse_money, tiers._money):
            errors = {}
            assert parse(over, "value", errors) is None and errors == {"value": [TOO_LARGE]}
            assert parse(top, "value", {}) == money.MAX_AMOUNT and parse(" ", "value", {}) is None
        with pytest.raises(ValidationError) as refused:
            care._clean_compensation("refund", over)
        assert refused.value.message_dict == {"compensation_amount": [TOO_LARGE]}
        assert care._clean_compensation("refund", top) == ("refund", money.MAX_AMOUNT)
        with pytest.raises(ValidationError) as refused:
            campaigns._money(over, "cost")
        assert refused.value.message_dict == {"cost": [TOO_LARGE]}
        assert campaigns._money("", "cost") == Decimal("0.00")


@pytest.mark.parametrize("value, expected", [("1e3", FORMAT), ("12.345", FORMAT), ("NaN", FORMAT), ("1,000", FORMAT),
                                             ("10000000000", TOO_LARGE), (1800.5, FORMAT)])
def test_page_and_api_money_fields_read_by_the_same_rule(value, expected):
    from rest_framework import serializers

    from caravan.api.fields import MoneyField as ApiMoneyField
    from caravan.forms import MoneyField as FormMoneyField

    with pytest.raises(serializers.ValidationError) as api_refused:
        ApiMoneyField(min_value=0).run_validation(value)
    assert [str(m) for m in api_refused.value.detail] == [expected]
    if not isinstance(value, float):  # a form posts text
        with pytest.raises(ValidationError) as form_refused:
            FormMoneyField(min_value=0, required=False).clean(value)
        assert form_refused.value.messages == [expected]
    assert ApiMoneyField().run_validation(" 1234.5 ") == FormMoneyField().clean(" 1234.5 ") == Decimal("1234.50")
    assert FormMoneyField(required=False).clean("") is None


def test_a_segment_filter_amount_reads_by_the_same_rule():
    from crm.segments.values import Invalid, clean_money

    assert clean_money("20000") == "20000.00" and clean_money(7) == "7.00"
    segment_format = "Give an amount such as 20000 or 1234.50 (at most two decimals)."
    for value, expected in (("1e3", segment_format), (1000.5, segment_format), ("-5", segment_format),
                            ("12.345", segment_format), ("10000000000", TOO_LARGE)):
        with pytest.raises(Invalid) as refused:
            clean_money(value)
        assert str(refused.value) == expected
