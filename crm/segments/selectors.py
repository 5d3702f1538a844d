"""Segment reads (R-CAMP-1): the list, one segment, its members, a preview, the live count, and a
readable description of a definition for pages and exports."""
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from crm.customers.models import Customer, Preferences

from .definition import FILTERS, QUADRANTS, VALUE_SEGMENTS, resolve_date
from .models import Segment
from .query import count_matching, customers_matching, festival_window

PREVIEW_SIZE = 20


def segment_list() -> QuerySet:
    return Segment.objects.select_related("created_by").order_by("name", "pk")


def segment_access(pk) -> Segment:
    """The segment with this id in the active agency, else 404 (the same for missing and foreign)."""
    return get_object_or_404(Segment.objects.select_related("created_by"), pk=pk)


def segment_count(definition: dict) -> int:
    """The builder's live count: one ``SELECT count(*)``."""
    return count_matching(definition)


def members(definition: dict) -> QuerySet:
    """The matching customers, by name, for pages, the API and exports."""
    return customers_matching(definition).select_related("owner").order_by("name", "pk")


def preview(definition: dict, *, size: int = PREVIEW_SIZE) -> list[Customer]:
    return list(members(definition)[:size])


# --- a definition in words ------------------------------------------------------------------------

def _labels(choices) -> dict:
    return {str(value): str(label) for value, label in choices}


def _day(value: str, today) -> str:
    """``2025-05-01`` as a date; an offset such as ``-12m`` as "12 months ago (date)"."""
    day = resolve_date(value, today=today)
    shown = date_format(day, "SHORT_DATE_FORMAT")
    if value[0].isdigit() and len(value) == 10:
        return shown
    sign, amount, unit = (value[0], value[1:-1], value[-1]) if value[0] in "+-" else ("+", value[:-1], value[-1])
    names = {"d": _("days"), "w": _("weeks"), "m": _("months"), "y": _("years")}
    if amount == "0":
        return _("today (%(date)s)") % {"date": shown}
    words = (_("%(n)s %(unit)s ago") if sign == "-" else _("in %(n)s %(unit)s")) % {"n": amount, "unit": names[unit]}
    return f"{words} ({shown})"


def _period(value: dict, today) -> str:
    if "from" in value and "to" in value:
        return _("from %(a)s to %(b)s") % {"a": _day(value["from"], today), "b": _day(value["to"], today)}
    if "from" in value:
        return _("since %(a)s") % {"a": _day(value["from"], today)}
    if "to" in value:
        return _("until %(b)s") % {"b": _day(value["to"], today)}
    return _("ever")


def _range(value: dict, unit: str = "", low="min", high="max") -> str:
    a, b = value.get(low), value.get(high)
    if a is not None and b is not None:
        return f"{a}–{b}{unit}"
    if a is not None:
        return f"≥ {a}{unit}"
    return f"≤ {b}{unit}"


def describe(definition: dict) -> list[tuple[str, str]]:
    """``[(filter label, what it asks)]`` in the builder's order; ``[]`` for "every customer"."""
    from accounts.models import User
    from crm.customers.festivals import FESTIVALS
    from crm.trips.services import agency_today

    from .definition import validate

    today = agency_today()
    clean = validate(definition, references=False, today=today)
    labels = filter_labels()
    kinds = _labels(Customer.Kind.choices)
    cabins = _labels(Preferences.Cabin.choices)
    sensitivity = _labels(Preferences.Sensitivity.choices)
    segments, quadrants = value_choices()
    out = []
    for key in FILTERS:
        if key not in clean:
            continue
        value = clean[key]
        if key == "kind":
            text = kinds.get(value, value)
        elif key == "age":
            text = _range(value)
        elif key == "tier":
            from crm.tiers.models import ServiceTier

            names = dict(ServiceTier.objects.filter(pk__in=value).values_list("pk", "name"))
            text = ", ".join(names.get(pk, _("(deleted tier)")) for pk in value)
        elif key == "owner":
            ids = [v for v in value if v != "none"]
            people = {u.pk: u.full_name or u.email for u in User.objects.filter(pk__in=ids)}
            text = ", ".join([people.get(pk, f"#{pk}") for pk in ids] + ([_("nobody")] if "none" in value else []))
        elif key == "trips":
            text = _("%(range)s trips, %(period)s") % {"range": _range(value), "period": _period(value, today)}
        elif key == "destination":
            how = _("exactly") if value.get("exact") else _("contains")
            text = f"{how} {' / '.join(value['any'])}, {_period(value, today)}"
        elif key == "spend":
            basis = _("margin") if value["basis"] == "margin" else _("revenue")
            text = f"{basis} {_range(value)}, {_period(value, today)}"
        elif key == "last_trip":
            parts = []
            if "after" in value:
                parts.append(_("on or after %(d)s") % {"d": _day(value["after"], today)})
            if "before" in value:
                parts.append(_("before %(d)s") % {"d": _day(value["before"], today)})
            text = _(" and ").join(parts)
        elif key == "festival":
            window = festival_window(value, today)
            year = value.get("year", today.year - 1)
            text = f"{FESTIVALS[value['key']][0]} {year}"
            if window:
                text += f" ({date_format(window[0], 'SHORT_DATE_FORMAT')}–{date_format(window[1], 'SHORT_DATE_FORMAT')})"
            if "year" not in value:
                text += " · " + _("always last year")
        elif key == "price_sensitivity":
            text = ", ".join(sensitivity.get(v, v) for v in value)
        elif key == "discount_share":
            text = _("%(range)s of booked items, %(period)s") % {"range": _range(value, "%"),
                                                                 "period": _period(value, today)}
        elif key == "cabin":
            text = ", ".join(cabins.get(v, v) for v in value)
        elif key == "rfm":
            text = " · ".join(f"{score.upper()} {_range(value, low=f'{score}_min', high=f'{score}_max')}"
                              for score in "rfm" if f"{score}_min" in value or f"{score}_max" in value)
        elif key == "value_segment":
            text = ", ".join(segments.get(v, v) for v in value)
        elif key == "quadrant":
            text = ", ".join(quadrants.get(v, v) for v in value)
        elif key == "p_alive":
            text = _range(value, "%")
        elif key in ("late_payer", "emailable"):
            text = _("yes") if value else _("no")
        else:
            text = ", ".join(value)
        out.append((labels[key], text))
    return out


def value_choices() -> tuple[dict, dict]:
    """Labels of the value segments and quadrants (from crm.value when it is installed)."""
    from crm.value.models import CustomerValue

    segments = _labels(CustomerValue.Segment.choices)
    quadrants = _labels(CustomerValue.Quadrant.choices)
    return ({k: segments.get(k, k) for k in VALUE_SEGMENTS}, {k: quadrants.get(k, k) for k in QUADRANTS})


def filter_labels() -> dict:
    return {
        "kind": _("Kind"), "city": _("City"), "age": _("Age"), "tier": _("Service tier"),
        "owner": _("Account manager"), "tags": _("Tags"), "trips": _("Trips"), "destination": _("Destination"),
        "spend": _("Spend"), "last_trip": _("Last trip"), "festival": _("Travelled at a festival"),
        "price_sensitivity": _("Price sensitivity"), "discount_share": _("Discounted fares"),
        "airline": _("Preferred airline"), "cabin": _("Cabin"), "hotel_chain": _("Hotel chain"),
        "interest": _("Interests"), "rfm": _("RFM scores"), "value_segment": _("Value segment"),
        "quadrant": _("Scale × loyalty"), "late_payer": _("Late payer"), "p_alive": _("Probability still active"),
        "emailable": _("May receive marketing e-mail"),
    }
