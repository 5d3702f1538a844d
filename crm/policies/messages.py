"""Translations of the engine's texts, by code.

The engine (``engine.py``) is Django-free and speaks English; the web layer shows its reasons in
the reader's language: ``REASONS[code] % params``. Each text here is the engine's ``MESSAGES``
text unchanged, wrapped in gettext so that ``make messages`` extracts it (a test checks that
every engine code has its entry and the same placeholders).
"""
import re

from django.utils.translation import gettext_lazy, pgettext_lazy

from caravan import formatting

from . import engine

REASONS = {
    "cabin.allowed": gettext_lazy("%(cabin)s allowed for grade %(grade)s on a %(duration)s flight"),
    "cabin.long_flight": gettext_lazy("%(cabin)s allowed for grade %(grade)s on a %(duration)s flight (long-flight exception over %(over)s)"),
    "cabin.not_allowed": gettext_lazy("%(cabin)s not allowed for grade %(grade)s on a %(duration)s flight (at most %(allowed)s)"),
    "fare.flexible": gettext_lazy("Flexible fare rule: fare %(fare)s accepted"),
    "fare.lowest": gettext_lazy("Fare %(fare)s is the lowest logical fare within ±%(window)s"),
    "fare.within_tolerance": gettext_lazy("Fare %(fare)s is %(over)s above the lowest logical fare %(lowest)s (%(flight)s, %(time)s, within ±%(window)s), inside the tolerance of %(allowance)s"),
    "fare.above_lowest": gettext_lazy("Fare %(fare)s is %(over)s above the lowest logical fare %(lowest)s (%(flight)s, %(time)s, within ±%(window)s)"),
    "fare.best": gettext_lazy("Fare %(fare)s is the best available fare"),
    "fare.best_within_tolerance": gettext_lazy("Fare %(fare)s is %(over)s above the best fare %(lowest)s (%(flight)s), inside the tolerance of %(allowance)s"),
    "fare.above_best": gettext_lazy("Fare %(fare)s is %(over)s above the best fare %(lowest)s (%(flight)s)"),
    "fx.missing": gettext_lazy("No exchange rate from %(from_currency)s to %(to_currency)s: the price %(price)s cannot be judged"),
    "advance.ok": gettext_lazy("Booked %(days)s days before departure (at least %(minimum)s required)"),
    "advance.too_late": gettext_lazy("Booked %(days)s days before departure; the policy requires at least %(minimum)s"),
    "preferred_airline.preferred": gettext_lazy("%(carrier)s is a preferred airline"),
    "preferred_airline.no_alternative": gettext_lazy("%(carrier)s is not a preferred airline, but no compliant flight of a preferred airline was available within the fare tolerance"),
    "preferred_airline.available": gettext_lazy("%(carrier)s is not a preferred airline, and a compliant flight of a preferred airline was available: %(alternative)s at %(price)s"),
    "preferred_chain.preferred": gettext_lazy("%(chain)s is a preferred hotel chain"),
    "preferred_chain.no_alternative": gettext_lazy("%(chain)s is not a preferred hotel chain, but no compliant hotel of a preferred chain was available within the tolerance"),
    "preferred_chain.available": gettext_lazy("%(chain)s is not a preferred hotel chain, and a compliant hotel of a preferred chain was available: %(alternative)s at %(price)s a night"),
    "rail.ok": gettext_lazy("Air allowed: %(distance)s km is not under the rail threshold of %(limit)s km"),
    "rail.required": gettext_lazy("Rail instead of air for trips under %(limit)s km; this flight covers %(distance)s km"),
    "rail.distance_unknown": gettext_lazy("Distance unknown: the rail rule (under %(limit)s km) was not applied"),
    "hotel_cap.ok": gettext_lazy("Nightly rate %(rate)s is within the cap %(cap)s for grade %(grade)s in tier-%(tier)s city %(city)s"),
    "hotel_cap.over": gettext_lazy("Nightly rate %(rate)s is %(over)s above the cap %(cap)s for grade %(grade)s in tier-%(tier)s city %(city)s"),
    "hotel_cap.no_cap": gettext_lazy("No hotel cap covers grade %(grade)s in tier-%(tier)s city %(city)s"),
}

RULE_LABELS = {
    "cabin": gettext_lazy("Cabin class"),
    "fare": gettext_lazy("Fare"),
    "advance_purchase": gettext_lazy("Advance purchase"),
    "rail": gettext_lazy("Rail instead of air"),
    "preferred_airline": gettext_lazy("Preferred airline"),
    "hotel_cap": gettext_lazy("Hotel nightly cap"),
    "preferred_chain": gettext_lazy("Preferred hotel chain"),
}

CHANGE_LABELS = {
    "cabin_rules": gettext_lazy("Cabin rules"),
    "long_flight": gettext_lazy("Long-flight exception"),
    "fare_rule": gettext_lazy("Fare rule"),
    "hotel_caps": gettext_lazy("Hotel caps"),
    "advance_days": gettext_lazy("Advance purchase (days)"),
    "preferred_airlines": gettext_lazy("Preferred airlines"),
    "preferred_hotel_chains": gettext_lazy("Preferred hotel chains"),
    "rail_under_km": gettext_lazy("Rail instead of air under (km)"),
    "out_of_policy": gettext_lazy("Out-of-policy bookings"),
    "approvers": gettext_lazy("Who approves"),
    "currency": gettext_lazy("Currency"),
    "travel_manager": gettext_lazy("Travel manager"),
}

CABIN_LABELS = {
    "economy": pgettext_lazy("cabin", "Economy"),
    "premium_economy": pgettext_lazy("cabin", "Premium economy"),
    "business": pgettext_lazy("cabin", "Business class"),
    "first": pgettext_lazy("cabin", "First class"),
}
_CABIN_BY_ENGLISH = {english: CABIN_LABELS[code] for code, english in engine.CABIN_LABELS.items()}
_CABIN_PARAMS = ("cabin", "allowed")
_ENGINE_MONEY = re.compile(r"([A-Z]{3}) (-?[0-9][0-9,]*\.[0-9]{2})")  # engine.format_money's output
_ENGINE_DURATION = re.compile(r"(?:([0-9]+) h)? ?(?:([0-9]+) min)?")  # engine.format_duration's output


def reason(code: str, params: dict) -> str:
    """The reason for a rule result in the active language (cabin names translated too)."""
    params = dict(params)
    for key in _CABIN_PARAMS:
        if key in params and params[key] in _CABIN_BY_ENGLISH:
            params[key] = str(_CABIN_BY_ENGLISH[params[key]])
    for key, value in params.items():  # the engine writes "CNY 1,234.50": shown in the reader's language
        amount = _ENGINE_MONEY.fullmatch(value) if isinstance(value, str) else None
        if amount:
            params[key] = formatting.money(amount[2].replace(",", ""), amount[1])
    for key, value in params.items():  # and "2 h 50 min" (engine.format_duration) in the reader's units
        duration = _ENGINE_DURATION.fullmatch(str(value)) if isinstance(value, (str, int)) else None
        if duration and any(duration.groups()):
            params[key] = duration_shown(*(int(n) if n else 0 for n in duration.groups()))
    text = REASONS.get(code) or engine.MESSAGES.get(code)
    return str(text) % params if text else code


def duration_shown(hours: int, minutes: int) -> str:
    """A flight's duration as ``engine.format_duration`` writes it, in the active language."""
    if hours and minutes:
        return gettext_lazy("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": minutes}
    if hours:
        return gettext_lazy("%(hours)s h") % {"hours": hours}
    return gettext_lazy("%(minutes)s min") % {"minutes": minutes}


def rule_label(rule: str) -> str:
    return str(RULE_LABELS.get(rule, rule))


def code_label(code: str) -> str:
    """A short name for a failed rule code in reports: the rule's label and what went wrong."""
    return {
        "cabin.not_allowed": gettext_lazy("Cabin above the grade's allowance"),
        "fare.above_lowest": gettext_lazy("Fare above the lowest logical fare"),
        "fare.above_best": gettext_lazy("Fare above the best fare"),
        "fx.missing": gettext_lazy("No exchange rate"),
        "advance.too_late": gettext_lazy("Booked too late"),
        "preferred_airline.available": gettext_lazy("Non-preferred airline"),
        "preferred_chain.available": gettext_lazy("Non-preferred hotel chain"),
        "rail.required": gettext_lazy("Rail required"),
        "hotel_cap.over": gettext_lazy("Hotel above the nightly cap"),
        "hotel_cap.no_cap": gettext_lazy("No hotel cap for the city tier"),
    }.get(code, code)
