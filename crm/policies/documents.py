"""The rules of a policy version as a JSON document, and back to ``engine.Policy``.

The document (what ``PolicyVersion.rules`` holds and the API reads and writes)::

    {"cabin_rules": [{"max_cabin": "business", "min_grade": "D1", "departments": ["Sales"]}],
     "long_flight": {"min_grade": "M3", "over_minutes": 360, "cabin": "business", "departments": null},
     "fare_rule": {"kind": "lowest_logical", "window_minutes": 120, "max_stops": 1,
                   "tolerance_amount": "100.00", "tolerance_percent": "5"},
     "hotel_caps": [{"city_tier": 1, "nightly_cap": "800.00", "min_grade": null, "departments": null}],
     "advance_days": 3, "preferred_airlines": ["CA", "MU"], "preferred_hotel_chains": ["Marriott"],
     "rail_under_km": 500, "out_of_policy": "allowed_with_approval", "approvers": ["traveler_manager"]}

``clean_document`` validates a document from anywhere (page, API, demo) and returns it normalised;
errors are field-level, keyed by the document's path (``fare_rule.window_minutes``,
``cabin_rules.2.min_grade``), so the API returns them as they are and the page maps them onto its
forms. Django-free apart from the ValidationError and gettext.
"""
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from caravan.money import parse_money

from . import engine

MAX_RULES = 60
DEFAULT_DOCUMENT = {
    "cabin_rules": [{"max_cabin": "economy", "min_grade": None, "departments": None}],
    "long_flight": None,
    "fare_rule": {"kind": "lowest_logical", "window_minutes": 120, "max_stops": None,
                  "tolerance_amount": "0.00", "tolerance_percent": "0"},
    "hotel_caps": [],
    "advance_days": None, "preferred_airlines": [], "preferred_hotel_chains": [], "rail_under_km": None,
    "out_of_policy": "allowed_with_approval", "approvers": ["traveler_manager"],
}


class _Errors(dict):
    def add(self, path: str, message: str) -> None:
        self.setdefault(path, []).append(message)


def _grade(value, path: str, errors: _Errors, *, required: bool = False) -> str | None:
    if value in (None, ""):
        if required:
            errors.add(path, _("Give a job grade, e.g. M3."))
        return None
    grade = str(value).strip().upper()
    try:
        engine.grade_rank(grade)
    except ValueError:
        errors.add(path, _("“%(grade)s” is not a job grade: use e.g. P3, M1, D2, E1 or VP1.") % {"grade": value})
        return None
    return grade


def _departments(value, path: str, errors: _Errors) -> list[str] | None:
    if value in (None, "", []):
        return None
    if isinstance(value, str):
        value = value.replace("，", ",").split(",")
    if not isinstance(value, (list, tuple)) or not all(isinstance(d, str) for d in value):
        errors.add(path, _("List the departments as text."))
        return None
    departments = sorted({d.strip() for d in value if d.strip()})
    return departments or None


def _cabin(value, path: str, errors: _Errors) -> str | None:
    if value not in engine.CABINS:
        errors.add(path, _("Choose a cabin."))
        return None
    return value


def _int(value, path: str, errors: _Errors, *, low: int, high: int, required: bool = False) -> int | None:
    if value in (None, ""):
        if required:
            errors.add(path, _("This field is required."))
        return None
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        errors.add(path, _("Enter a whole number from %(low)d to %(high)d.") % {"low": low, "high": high})
        return None
    return number


def _money(value, path: str, errors: _Errors, *, required: bool = True, percent: bool = False) -> str | None:
    if value in (None, ""):
        if required:
            errors.add(path, _("Give an amount such as 800.00."))
        return None
    if not percent:
        try:
            return str(parse_money(value, field=path, allow_zero=True))
        except ValidationError as exc:
            errors.add(path, exc.message_dict[path][0])
            return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or not 0 <= amount <= 100:
        errors.add(path, _("Enter a percentage from 0 to 100."))
        return None
    return str(amount.normalize())


def _codes(value, path: str, errors: _Errors, *, upper: bool) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = value.replace("，", ",").split(",")
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        errors.add(path, _("List them separated by commas."))
        return []
    cleaned = {v.strip().upper() if upper else v.strip() for v in value if v.strip()}
    if any(len(v) > 60 for v in cleaned):
        errors.add(path, _("Each name must be at most 60 characters."))
    return sorted(cleaned)


def clean_document(document) -> dict:
    """The document, validated and normalised; ``ValidationError`` with per-path errors."""
    if not isinstance(document, dict):
        raise ValidationError({"rules": [_("The rules must be a JSON object.")]})
    errors = _Errors()
    doc = {}

    rules = document.get("cabin_rules") or []
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        errors.add("cabin_rules", _("Give at most %(n)d cabin rules.") % {"n": MAX_RULES})
        rules = []
    doc["cabin_rules"] = []
    for i, r in enumerate(rules):
        r = r if isinstance(r, dict) else {}
        doc["cabin_rules"].append({
            "max_cabin": _cabin(r.get("max_cabin"), f"cabin_rules.{i}.max_cabin", errors),
            "min_grade": _grade(r.get("min_grade"), f"cabin_rules.{i}.min_grade", errors),
            "departments": _departments(r.get("departments"), f"cabin_rules.{i}.departments", errors)})

    lf = document.get("long_flight")
    if lf in (None, {}, ""):
        doc["long_flight"] = None
    elif not isinstance(lf, dict):
        errors.add("long_flight", _("Describe the long-flight exception, or leave it out."))
        doc["long_flight"] = None
    else:
        doc["long_flight"] = {
            "min_grade": _grade(lf.get("min_grade"), "long_flight.min_grade", errors, required=True),
            "over_minutes": _int(lf.get("over_minutes"), "long_flight.over_minutes", errors, low=1, high=24 * 60,
                                 required=True),
            "cabin": _cabin(lf.get("cabin"), "long_flight.cabin", errors),
            "departments": _departments(lf.get("departments"), "long_flight.departments", errors)}

    fr = document.get("fare_rule") or {}
    if not isinstance(fr, dict):
        errors.add("fare_rule", _("Describe the fare rule."))
        fr = {}
    kind = fr.get("kind") or "lowest_logical"
    if kind not in engine.FARE_KINDS:
        errors.add("fare_rule.kind", _("Choose a fare rule."))
    doc["fare_rule"] = {
        "kind": kind,
        "window_minutes": _int(fr.get("window_minutes"), "fare_rule.window_minutes", errors, low=0,
                               high=24 * 60) if fr.get("window_minutes") not in (None, "") else 120,
        "max_stops": _int(fr.get("max_stops"), "fare_rule.max_stops", errors, low=0, high=5),
        "tolerance_amount": _money(fr.get("tolerance_amount"), "fare_rule.tolerance_amount", errors,
                                   required=False) or "0.00",
        "tolerance_percent": _money(fr.get("tolerance_percent"), "fare_rule.tolerance_percent", errors,
                                    required=False, percent=True) or "0"}

    caps = document.get("hotel_caps") or []
    if not isinstance(caps, list) or len(caps) > MAX_RULES:
        errors.add("hotel_caps", _("Give at most %(n)d hotel caps.") % {"n": MAX_RULES})
        caps = []
    doc["hotel_caps"] = []
    for i, c in enumerate(caps):
        c = c if isinstance(c, dict) else {}
        doc["hotel_caps"].append({
            "city_tier": _int(c.get("city_tier"), f"hotel_caps.{i}.city_tier", errors, low=1, high=3, required=True),
            "nightly_cap": _money(c.get("nightly_cap"), f"hotel_caps.{i}.nightly_cap", errors),
            "min_grade": _grade(c.get("min_grade"), f"hotel_caps.{i}.min_grade", errors),
            "departments": _departments(c.get("departments"), f"hotel_caps.{i}.departments", errors)})

    doc["advance_days"] = _int(document.get("advance_days"), "advance_days", errors, low=0, high=365)
    doc["preferred_airlines"] = _codes(document.get("preferred_airlines"), "preferred_airlines", errors, upper=True)
    doc["preferred_hotel_chains"] = _codes(document.get("preferred_hotel_chains"), "preferred_hotel_chains", errors,
                                           upper=False)
    doc["rail_under_km"] = _int(document.get("rail_under_km"), "rail_under_km", errors, low=1, high=5000)
    out = document.get("out_of_policy") or "allowed_with_approval"
    if out not in engine.OUT_OF_POLICY:
        errors.add("out_of_policy", _("Choose whether out-of-policy bookings are allowed."))
    doc["out_of_policy"] = out
    approvers = document.get("approvers")
    if approvers in (None, "", []):
        approvers = ["traveler_manager"]
    if isinstance(approvers, str):
        approvers = [approvers]
    if not isinstance(approvers, list) or not set(approvers) <= set(engine.APPROVERS):
        errors.add("approvers", _("Choose who approves: the traveler's manager and/or the travel manager."))
        approvers = ["traveler_manager"]
    doc["approvers"] = [a for a in engine.APPROVERS if a in approvers]
    if errors:
        raise ValidationError(dict(errors))
    return doc


def _frozen(departments) -> frozenset[str] | None:
    return None if departments is None else frozenset(departments)


def to_policy(document: dict, *, version, currency: str) -> engine.Policy:
    """The engine's ``Policy`` for a (clean) document."""
    lf = document.get("long_flight")
    fr = document.get("fare_rule") or {}
    return engine.Policy(
        version=version, currency=currency,
        cabin_rules=[engine.CabinRule(r["max_cabin"], r.get("min_grade"), _frozen(r.get("departments")))
                     for r in document.get("cabin_rules", [])],
        long_flight=engine.LongFlightException(lf["min_grade"], int(lf["over_minutes"]), lf["cabin"],
                                               _frozen(lf.get("departments"))) if lf else None,
        fare_rule=engine.FareRule(fr.get("kind", "lowest_logical"), int(fr.get("window_minutes", 120)),
                                  fr.get("max_stops"), Decimal(fr.get("tolerance_amount") or "0"),
                                  Decimal(fr.get("tolerance_percent") or "0")),
        hotel_caps=[engine.HotelCap(int(c["city_tier"]), Decimal(c["nightly_cap"]), c.get("min_grade"),
                                    _frozen(c.get("departments"))) for c in document.get("hotel_caps", [])],
        advance_days=document.get("advance_days"),
        preferred_airlines=set(document.get("preferred_airlines", [])),
        preferred_hotel_chains=set(document.get("preferred_hotel_chains", [])),
        rail_under_km=document.get("rail_under_km"),
        out_of_policy=document.get("out_of_policy", "allowed_with_approval"),
        approvers=list(document.get("approvers") or ["traveler_manager"]))


def _departments_out(departments) -> list[str] | None:
    return None if departments is None else sorted(departments)


def from_policy(policy: engine.Policy) -> dict:
    """The document for an engine ``Policy`` (the inverse of :func:`to_policy`)."""
    lf, fr = policy.long_flight, policy.fare_rule
    return clean_document({
        "cabin_rules": [{"max_cabin": r.max_cabin, "min_grade": r.min_grade,
                         "departments": _departments_out(r.departments)} for r in policy.cabin_rules],
        "long_flight": {"min_grade": lf.min_grade, "over_minutes": lf.over_minutes, "cabin": lf.cabin,
                        "departments": _departments_out(lf.departments)} if lf else None,
        "fare_rule": {"kind": fr.kind, "window_minutes": fr.window_minutes, "max_stops": fr.max_stops,
                      "tolerance_amount": str(fr.tolerance_amount), "tolerance_percent": str(fr.tolerance_percent)},
        "hotel_caps": [{"city_tier": c.city_tier, "nightly_cap": str(c.nightly_cap), "min_grade": c.min_grade,
                        "departments": _departments_out(c.departments)} for c in policy.hotel_caps],
        "advance_days": policy.advance_days, "preferred_airlines": sorted(policy.preferred_airlines),
        "preferred_hotel_chains": sorted(policy.preferred_hotel_chains), "rail_under_km": policy.rail_under_km,
        "out_of_policy": policy.out_of_policy, "approvers": list(policy.approvers)})


def rule_count(document: dict) -> int:
    """How many rules the document sets (for summaries and the bench's "30-rule policy")."""
    count = len(document.get("cabin_rules", [])) + len(document.get("hotel_caps", [])) + 1  # + the fare rule
    count += bool(document.get("long_flight")) + (document.get("advance_days") is not None)
    count += bool(document.get("preferred_airlines")) + bool(document.get("preferred_hotel_chains"))
    return count + (document.get("rail_under_km") is not None)


def changes(old: dict | None, new: dict) -> list[tuple[str, object, object]]:
    """What changed between two documents, per top-level rule: [(key, old value, new value)]."""
    old = old or {}
    return [(key, old.get(key), new.get(key)) for key in new if old.get(key) != new.get(key)]
