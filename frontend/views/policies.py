"""Travel-policy pages (R-POL-1 … R-POL-3): an account's policy, its editing and history, "check a
booking", the compliance report, approvals (and the approver's public page), a trip item's check,
and the agency's exchange rates.

Thin views: writes go through crm.policies.services, reads through crm.policies.selectors.
"""
from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import formset_factory
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.roles import Cap
from caravan.forms import MoneyField, errors_onto
from caravan.tenancy import current_agency, require_agency
from crm.customers.models import Customer
from crm.policies import documents, engine, selectors, services
from crm.policies.exports import report_csv
from crm.policies.messages import CABIN_LABELS
from crm.policies.models import Approval, BookingCheck, PolicyVersion
from crm.trips.models import ItineraryItem

from .base import AgencyPage
from .periods import period_form
from .customers import DATE_INPUT

DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
CABIN_CHOICES = [(code, CABIN_LABELS[code]) for code in engine.CABINS]
TIER_CHOICES = [(1, gettext_lazy("Tier 1 (e.g. Beijing, Shanghai)")), (2, gettext_lazy("Tier 2")),
                (3, gettext_lazy("Tier 3"))]
FARE_CHOICES = [("lowest_logical", gettext_lazy("Lowest logical fare within a window")),
                ("best_fare", gettext_lazy("Best fare")), ("flexible", gettext_lazy("Flexible"))]
APPROVER_CHOICES = Approval.Approver.choices


def _account(pk) -> Customer:
    return get_object_or_404(Customer, pk=pk, kind=Customer.Kind.COMPANY, merged_into__isnull=True)


def can_see_report(user) -> bool:
    return user.can(Cap.POLICIES_MANAGE) or user.can(Cap.REPORTS_VIEW)


def _grade_validator(value):
    try:
        engine.grade_rank(value)
    except ValueError:
        raise ValidationError(_("“%(grade)s” is not a job grade: use e.g. P3, M1, D2, E1 or VP1.") % {"grade": value})


# --- forms: the policy ----------------------------------------------------------------------------

class PolicyForm(forms.Form):
    currency = forms.CharField(label=gettext_lazy("Currency"), max_length=3)
    travel_manager = forms.ModelChoiceField(label=gettext_lazy("Travel manager"), queryset=Customer.objects.none(),
                                            required=False,
                                            help_text=gettext_lazy("Someone at the account who approves when the "
                                                                   "policy says so."))
    effective_from = forms.DateTimeField(label=gettext_lazy("In force from"), required=False, widget=DATETIME_INPUT,
                                         help_text=gettext_lazy("Empty: now. Bookings made before stay judged by the "
                                                                "version in force then."))
    note = forms.CharField(label=gettext_lazy("What changed and why"), max_length=500, required=False)
    long_flight_min_grade = forms.CharField(label=gettext_lazy("Long flights: from grade"), max_length=20,
                                            required=False, validators=[_grade_validator])
    long_flight_over_minutes = forms.IntegerField(label=gettext_lazy("on flights over (minutes)"), required=False,
                                                  min_value=1, max_value=24 * 60)
    long_flight_cabin = forms.ChoiceField(label=gettext_lazy("may fly"), choices=[("", "—"), *CABIN_CHOICES],
                                          required=False)
    fare_kind = forms.ChoiceField(label=gettext_lazy("Fare rule"), choices=FARE_CHOICES)
    fare_window_minutes = forms.IntegerField(label=gettext_lazy("Window (± minutes)"), min_value=0,
                                             max_value=24 * 60, initial=120)
    fare_max_stops = forms.IntegerField(label=gettext_lazy("At most stops"), required=False, min_value=0, max_value=5)
    fare_tolerance_amount = MoneyField(label=gettext_lazy("Tolerance (amount)"), required=False, min_value=0)
    fare_tolerance_percent = forms.DecimalField(label=gettext_lazy("Tolerance (%)"), required=False, min_value=0,
                                                max_value=100, max_digits=5, decimal_places=2)
    advance_days = forms.IntegerField(label=gettext_lazy("Book at least (days ahead)"), required=False, min_value=0,
                                      max_value=365)
    preferred_airlines = forms.CharField(label=gettext_lazy("Preferred airlines"), required=False,
                                         help_text=gettext_lazy("IATA codes, separated by commas: CA, MU"))
    preferred_hotel_chains = forms.CharField(label=gettext_lazy("Preferred hotel chains"), required=False,
                                             help_text=gettext_lazy("Separated by commas: Marriott, Hilton"))
    rail_under_km = forms.IntegerField(label=gettext_lazy("Rail instead of air under (km)"), required=False,
                                       min_value=1, max_value=5000)
    out_of_policy = forms.ChoiceField(label=gettext_lazy("Out-of-policy bookings"),
                                      choices=PolicyVersion.OutOfPolicy.choices)
    approvers = forms.MultipleChoiceField(label=gettext_lazy("Who approves"), choices=APPROVER_CHOICES,
                                          widget=forms.CheckboxSelectMultiple, required=False)

    def __init__(self, *args, account: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["travel_manager"].queryset = Customer.objects.filter(
            employments__company=account, employments__active=True).order_by("name")

    def rules(self) -> dict:
        d = self.cleaned_data
        long_flight = None
        if d.get("long_flight_min_grade") or d.get("long_flight_over_minutes") or d.get("long_flight_cabin"):
            long_flight = {"min_grade": d.get("long_flight_min_grade"), "over_minutes": d.get("long_flight_over_minutes"),
                           "cabin": d.get("long_flight_cabin"), "departments": None}
        return {"long_flight": long_flight,
                "fare_rule": {"kind": d["fare_kind"], "window_minutes": d["fare_window_minutes"],
                              "max_stops": d.get("fare_max_stops"), "tolerance_amount": d.get("fare_tolerance_amount"),
                              "tolerance_percent": d.get("fare_tolerance_percent")},
                "advance_days": d.get("advance_days"), "preferred_airlines": d.get("preferred_airlines", ""),
                "preferred_hotel_chains": d.get("preferred_hotel_chains", ""), "rail_under_km": d.get("rail_under_km"),
                "out_of_policy": d["out_of_policy"], "approvers": d.get("approvers") or []}

    @staticmethod
    def initial_for(version: PolicyVersion | None) -> dict:
        if version is None:
            return {"currency": require_agency().currency, "fare_kind": "lowest_logical", "fare_window_minutes": 120,
                    "out_of_policy": "allowed_with_approval", "approvers": ["traveler_manager"]}
        r = version.rules
        lf, fr = r.get("long_flight") or {}, r.get("fare_rule") or {}
        return {"currency": version.currency, "travel_manager": version.travel_manager_id,
                "long_flight_min_grade": lf.get("min_grade", ""), "long_flight_over_minutes": lf.get("over_minutes"),
                "long_flight_cabin": lf.get("cabin", ""), "fare_kind": fr.get("kind"),
                "fare_window_minutes": fr.get("window_minutes"), "fare_max_stops": fr.get("max_stops"),
                "fare_tolerance_amount": fr.get("tolerance_amount"), "fare_tolerance_percent": fr.get("tolerance_percent"),
                "advance_days": r.get("advance_days"), "preferred_airlines": ", ".join(r.get("preferred_airlines", [])),
                "preferred_hotel_chains": ", ".join(r.get("preferred_hotel_chains", [])),
                "rail_under_km": r.get("rail_under_km"), "out_of_policy": r.get("out_of_policy"),
                "approvers": r.get("approvers", [])}


# Document paths → PolicyForm fields, for service errors.
POLICY_FIELDS = {"long_flight.min_grade": "long_flight_min_grade", "long_flight.over_minutes": "long_flight_over_minutes",
                 "long_flight.cabin": "long_flight_cabin", "fare_rule.kind": "fare_kind",
                 "fare_rule.window_minutes": "fare_window_minutes", "fare_rule.max_stops": "fare_max_stops",
                 "fare_rule.tolerance_amount": "fare_tolerance_amount",
                 "fare_rule.tolerance_percent": "fare_tolerance_percent"}


class CabinRuleForm(forms.Form):
    max_cabin = forms.ChoiceField(label=gettext_lazy("May fly up to"), choices=[("", "—"), *CABIN_CHOICES])
    min_grade = forms.CharField(label=gettext_lazy("From grade"), max_length=20, required=False,
                                validators=[_grade_validator], help_text=gettext_lazy("Empty: everyone"))
    departments = forms.CharField(label=gettext_lazy("Only departments"), max_length=300, required=False,
                                  help_text=gettext_lazy("Empty: all; else separated by commas"))


class HotelCapForm(forms.Form):
    city_tier = forms.TypedChoiceField(label=gettext_lazy("City tier"), choices=[("", "—"), *TIER_CHOICES], coerce=int)
    nightly_cap = MoneyField(label=gettext_lazy("Nightly cap"), min_value=0)
    min_grade = forms.CharField(label=gettext_lazy("From grade"), max_length=20, required=False,
                                validators=[_grade_validator], help_text=gettext_lazy("Empty: everyone"))
    departments = forms.CharField(label=gettext_lazy("Only departments"), max_length=300, required=False)


CabinRuleFormSet = formset_factory(CabinRuleForm, extra=2, can_delete=True, max_num=documents.MAX_RULES,
                                   validate_max=True)
HotelCapFormSet = formset_factory(HotelCapForm, extra=2, can_delete=True, max_num=documents.MAX_RULES,
                                  validate_max=True)


def _rows(formset, keys) -> list[tuple[dict, forms.Form]]:
    """Filled rows of a formset: (document row, its form)."""
    rows = []
    for form in formset.forms:
        data = getattr(form, "cleaned_data", None)
        if not data or data.get("DELETE"):
            continue
        rows.append(({key: data.get(key) for key in keys}, form))
    return rows


def _apply_document_errors(exc: ValidationError, form: forms.Form, row_forms: dict[str, list[forms.Form]]) -> None:
    for path, errors in exc.message_dict.items():
        parts = path.split(".")
        if parts[0] in row_forms and len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(row_forms[parts[0]]):
            target = row_forms[parts[0]][int(parts[1])]
            target.add_error(parts[2] if parts[2] in target.fields else None, errors)
        else:
            name = POLICY_FIELDS.get(path, path)
            form.add_error(name if name in form.fields else None, errors)


# --- the policy pages -----------------------------------------------------------------------------

class PolicyDetailView(AgencyPage, View):
    """An account's policy: the version in force, a coming one, the people it applies to."""

    required_cap = Cap.CUSTOMERS_VIEW

    def get(self, request, pk):
        account = _account(pk)
        now = timezone.now()
        version = selectors.policy_in_force(account, now)
        latest = selectors.latest_version(account)
        return render(request, "frontend/policies/policy_detail.html", {
            "account": account, "version": version, "summary": selectors.summary(version) if version else None,
            "coming": latest if latest and (version is None or latest.pk != version.pk) else None,
            "people": selectors.account_people(account),
            "pending": selectors.approvals_for(user=request.user, status=Approval.Status.PENDING, account=account)[:20],
            "can_manage": request.user.can(Cap.POLICIES_MANAGE), "can_check": request.user.can(Cap.PIPELINE_WORK),
            "can_report": can_see_report(request.user), "can_rates": request.user.can(Cap.SETTINGS_MANAGE)})


class PolicyEditView(AgencyPage, View):
    """Write the policy: saving makes a new version (formsets for cabin rules and hotel caps)."""

    required_cap = Cap.POLICIES_MANAGE
    template = "frontend/policies/policy_form.html"

    def page(self, request, account, form, cabins, caps, status=200):
        return render(request, self.template, {"account": account, "form": form, "cabins": cabins, "caps": caps,
                                               "latest": selectors.latest_version(account)}, status=status)

    def get(self, request, pk):
        account = _account(pk)
        latest = selectors.latest_version(account)
        rules = latest.rules if latest else documents.DEFAULT_DOCUMENT
        cabins = CabinRuleFormSet(prefix="cabin", initial=[
            {**r, "departments": ", ".join(r.get("departments") or [])} for r in rules.get("cabin_rules", [])])
        caps = HotelCapFormSet(prefix="cap", initial=[
            {**c, "departments": ", ".join(c.get("departments") or [])} for c in rules.get("hotel_caps", [])])
        form = PolicyForm(account=account, initial=PolicyForm.initial_for(latest))
        return self.page(request, account, form, cabins, caps)

    def post(self, request, pk):
        account = _account(pk)
        form = PolicyForm(request.POST, account=account)
        cabins = CabinRuleFormSet(request.POST, prefix="cabin")
        caps = HotelCapFormSet(request.POST, prefix="cap")
        if form.is_valid() and cabins.is_valid() and caps.is_valid():
            cabin_rows = _rows(cabins, ("max_cabin", "min_grade", "departments"))
            cap_rows = _rows(caps, ("city_tier", "nightly_cap", "min_grade", "departments"))
            rules = form.rules() | {"cabin_rules": [row for row, _form in cabin_rows],
                                    "hotel_caps": [row for row, _form in cap_rows]}
            try:
                version = services.policy_save(
                    actor=request.user, account=account, rules=rules, currency=form.cleaned_data["currency"],
                    travel_manager=form.cleaned_data["travel_manager"],
                    effective_from=form.cleaned_data["effective_from"], note=form.cleaned_data["note"])
            except ValidationError as exc:
                _apply_document_errors(exc, form, {"cabin_rules": [f for _row, f in cabin_rows],
                                                   "hotel_caps": [f for _row, f in cap_rows]})
            else:
                messages.success(request, _("Policy saved as version %(number)d.") % {"number": version.number})
                return redirect("policy_detail", pk=account.pk)
        return self.page(request, account, form, cabins, caps, status=400)


class PolicyHistoryView(AgencyPage, View):
    required_cap = Cap.CUSTOMERS_VIEW

    def get(self, request, pk):
        account = _account(pk)
        return render(request, "frontend/policies/policy_history.html", {
            "account": account, "rows": selectors.version_history(account)})


# --- "check a booking" ----------------------------------------------------------------------------

class CheckForm(forms.Form):
    """A flight or hotel offer for a traveler of the account (or a grade and department)."""

    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=BookingCheck.Kind.choices,
                             widget=forms.RadioSelect, initial="flight")
    traveler = forms.ModelChoiceField(label=gettext_lazy("Traveler"), queryset=Customer.objects.none(), required=False,
                                      help_text=gettext_lazy("Grade and department come from their employment."))
    grade = forms.CharField(label=gettext_lazy("or job grade"), max_length=20, required=False)
    department = forms.CharField(label=gettext_lazy("Department"), max_length=100, required=False)
    booked_at = forms.DateTimeField(label=gettext_lazy("Booked at"), required=False, widget=DATETIME_INPUT,
                                    help_text=gettext_lazy("Empty: now. Picks the policy version in force."))
    requested_departure = forms.DateTimeField(label=gettext_lazy("Requested departure"), required=False,
                                              widget=DATETIME_INPUT,
                                              help_text=gettext_lazy("The fare window is centred on it."))
    # Flight
    flight_numbers = forms.CharField(label=gettext_lazy("Flight numbers"), max_length=60, required=False,
                                     help_text=gettext_lazy("e.g. CA1501 or MU5101/MU5102"))
    carrier = forms.CharField(label=gettext_lazy("Airline code"), max_length=3, required=False)
    origin = forms.CharField(label=gettext_lazy("From"), max_length=40, required=False)
    destination = forms.CharField(label=gettext_lazy("To"), max_length=40, required=False)
    departure = forms.DateTimeField(label=gettext_lazy("Departure"), required=False, widget=DATETIME_INPUT)
    duration_minutes = forms.IntegerField(label=gettext_lazy("Flight time (minutes)"), required=False, min_value=1)
    stops = forms.IntegerField(label=gettext_lazy("Stops"), required=False, min_value=0, max_value=5, initial=0)
    cabin = forms.ChoiceField(label=gettext_lazy("Cabin"), choices=[("", "—"), *CABIN_CHOICES], required=False)
    fare = MoneyField(label=gettext_lazy("Fare"), required=False, min_value=0)
    distance_km = forms.IntegerField(label=gettext_lazy("Distance (km)"), required=False, min_value=1)
    # Hotel
    property_name = forms.CharField(label=gettext_lazy("Hotel"), max_length=120, required=False)
    chain = forms.CharField(label=gettext_lazy("Chain"), max_length=60, required=False)
    city = forms.CharField(label=gettext_lazy("City"), max_length=60, required=False,
                           help_text=gettext_lazy("e.g. 上海, Shanghai or SHA"))
    country = forms.CharField(label=gettext_lazy("Country code"), max_length=3, required=False)
    nights = forms.IntegerField(label=gettext_lazy("Nights"), required=False, min_value=1, max_value=365, initial=1)
    nightly_rate = MoneyField(label=gettext_lazy("Nightly rate"), required=False, min_value=0)
    check_in = forms.DateField(label=gettext_lazy("Check-in"), required=False, widget=DATE_INPUT)
    currency = forms.CharField(label=gettext_lazy("Currency"), max_length=3, required=False)

    FLIGHT = ("flight_numbers", "carrier", "origin", "destination", "departure", "duration_minutes", "stops", "cabin",
              "fare", "distance_km", "currency")
    HOTEL = ("property_name", "chain", "city", "country", "nights", "nightly_rate", "check_in", "currency")

    def __init__(self, *args, account: Customer | None = None, travelers=None, **kwargs):
        super().__init__(*args, **kwargs)
        if travelers is not None:
            self.fields["traveler"].queryset = travelers
        elif account is not None:
            self.fields["traveler"].queryset = Customer.objects.filter(
                employments__company=account, employments__active=True).order_by("name")

    def offer(self) -> dict:
        d = self.cleaned_data
        return {key: d.get(key) for key in (self.FLIGHT if d["kind"] == "flight" else self.HOTEL)}


class AlternativeForm(forms.Form):
    """Another known offer for the same trip (flight or hotel fields, by the check's kind)."""

    flight_numbers = forms.CharField(label=gettext_lazy("Flight numbers"), max_length=60, required=False)
    departure = forms.DateTimeField(label=gettext_lazy("Departure"), required=False, widget=DATETIME_INPUT)
    duration_minutes = forms.IntegerField(label=gettext_lazy("Minutes"), required=False, min_value=1)
    stops = forms.IntegerField(label=gettext_lazy("Stops"), required=False, min_value=0, max_value=5)
    cabin = forms.ChoiceField(label=gettext_lazy("Cabin"), choices=[("", "—"), *CABIN_CHOICES], required=False)
    property_name = forms.CharField(label=gettext_lazy("Hotel"), max_length=120, required=False)
    chain = forms.CharField(label=gettext_lazy("Chain"), max_length=60, required=False)
    price = MoneyField(label=gettext_lazy("Fare or nightly rate"), required=False, min_value=0)
    currency = forms.CharField(label=gettext_lazy("Currency"), max_length=3, required=False)

    def offer(self, kind: str, main: dict) -> dict:
        d = self.cleaned_data
        if kind == "flight":
            return {"flight_numbers": d.get("flight_numbers"), "departure": d.get("departure"),
                    "duration_minutes": d.get("duration_minutes") or main.get("duration_minutes"),
                    "stops": d.get("stops") if d.get("stops") is not None else 0, "cabin": d.get("cabin"),
                    "fare": d.get("price"), "currency": d.get("currency") or main.get("currency"),
                    "origin": main.get("origin"), "destination": main.get("destination"),
                    "distance_km": main.get("distance_km")}
        return {"property_name": d.get("property_name"), "chain": d.get("chain"), "city": main.get("city"),
                "country": main.get("country"), "nights": main.get("nights"), "nightly_rate": d.get("price"),
                "currency": d.get("currency") or main.get("currency"), "check_in": main.get("check_in")}


AlternativeFormSet = formset_factory(AlternativeForm, extra=3, max_num=services.MAX_ALTERNATIVES, validate_max=True)


def _apply_check_errors(exc: ValidationError, form: forms.Form, alternatives: list[forms.Form]) -> None:
    for path, errors in exc.message_dict.items():
        parts = path.split(".")
        if parts[0] == "offer" and len(parts) == 2:
            name = {"nightly_rate": "nightly_rate", "fare": "fare"}.get(parts[1], parts[1])
            form.add_error(name if name in form.fields else None, errors)
        elif parts[0] == "alternatives" and len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(alternatives):
            target = alternatives[int(parts[1])]
            name = "price" if parts[2] in ("fare", "nightly_rate") else parts[2]
            target.add_error(name if name in target.fields else None, errors)
        else:
            form.add_error(path if path in form.fields else None, errors)


def _filled(formset) -> list[forms.Form]:
    return [f for f in formset.forms if getattr(f, "cleaned_data", None) and any(
        v not in (None, "") for v in f.cleaned_data.values())]


def run_check(request, form, alternatives, *, account=None, item=None):
    """Validate the forms and judge the offer (with ``item``: record it on the trip). None when the
    forms or the service found errors (they are on the forms)."""
    if not (form.is_valid() and alternatives.is_valid()):
        return None
    filled = _filled(alternatives)
    kind = form.cleaned_data["kind"] if item is None else item.kind
    main = form.offer() if item is None else {key: form.cleaned_data.get(key) for key in (
        CheckForm.FLIGHT if kind == "flight" else CheckForm.HOTEL)}
    others = [f.offer(kind, main) for f in filled]
    try:
        if item is not None:
            if form.cleaned_data.get("traveler") is None:
                form.add_error("traveler", _("Choose one of the trip's travelers."))
                return None
            return services.booking_check_record(
                actor=request.user, item=item, traveler=form.cleaned_data["traveler"], offer=main,
                alternatives=others, requested_departure=form.cleaned_data.get("requested_departure"),
                booked_at=form.cleaned_data.get("booked_at"))
        return services.policy_check(
            account=account, kind=kind, offer=main, alternatives=others, traveler=form.cleaned_data.get("traveler"),
            grade=form.cleaned_data.get("grade", ""), department=form.cleaned_data.get("department", ""),
            requested_departure=form.cleaned_data.get("requested_departure"),
            booked_at=form.cleaned_data.get("booked_at"))
    except ValidationError as exc:
        _apply_check_errors(exc, form, filled)
        return None


class PolicyCheckView(AgencyPage, View):
    """Check a proposed booking for a traveler of the account: every rule with its reason, the
    cheapest compliant alternative and the saving missed. Writes nothing."""

    required_cap = Cap.PIPELINE_WORK
    template = "frontend/policies/check.html"

    def get(self, request, pk):
        account = _account(pk)
        form = CheckForm(account=account, initial={"kind": request.GET.get("kind", "flight"),
                                                   "currency": require_agency().currency})
        return render(request, self.template, {"account": account, "form": form,
                                               "alternatives": AlternativeFormSet(prefix="alt")})

    def post(self, request, pk):
        account = _account(pk)
        form = CheckForm(request.POST, account=account)
        alternatives = AlternativeFormSet(request.POST, prefix="alt")
        outcome = run_check(request, form, alternatives, account=account)
        context = {"account": account, "form": form, "alternatives": alternatives}
        if outcome is None:
            return render(request, self.template, context, status=400)
        return render(request, self.template, context | {
            "outcome": outcome, "results": selectors.explained(outcome.results)})


class TripItemCheckView(AgencyPage, View):
    """"Check against policy" on a trip's flight or hotel item: judged for one of the trip's
    travelers and recorded on the trip; out of policy asks for an approval."""

    required_cap = Cap.PIPELINE_WORK
    template = "frontend/policies/item_check.html"

    def _item(self, pk) -> ItineraryItem:
        item = get_object_or_404(ItineraryItem.objects.select_related("trip", "trip__customer"), pk=pk)
        if item.kind not in BookingCheck.Kind.values:
            raise Http404
        return item

    def _travelers(self, item):
        return Customer.objects.filter(travels__trip=item.trip).order_by("-travels__is_lead", "name")

    def _page(self, request, item, form, alternatives, status=200):
        return render(request, self.template, {"item": item, "trip": item.trip, "form": form,
                                               "alternatives": alternatives}, status=status)

    def get(self, request, pk):
        item = self._item(pk)
        travelers = self._travelers(item)
        initial = {**selectors.item_initial(item), "kind": item.kind}
        if request.GET.get("traveler", "").isdigit():
            initial["traveler"] = int(request.GET["traveler"])
        elif travelers.count() == 1:
            initial["traveler"] = travelers.first().pk
        form = CheckForm(initial=initial, travelers=travelers)
        return self._page(request, item, form, AlternativeFormSet(prefix="alt"))

    def post(self, request, pk):
        item = self._item(pk)
        data = request.POST.copy()
        data["kind"] = item.kind
        form = CheckForm(data, travelers=self._travelers(item))
        alternatives = AlternativeFormSet(request.POST, prefix="alt")
        check = run_check(request, form, alternatives, item=item)
        if check is None:
            return self._page(request, item, form, alternatives, status=400)
        if check.compliant:
            messages.success(request, _("In policy."))
        elif check.forbidden:
            messages.error(request, _("Out of policy, and %(account)s's policy forbids out-of-policy bookings: "
                                      "this item cannot be booked as it is.") % {"account": check.account.name})
        else:
            messages.warning(request, _("Out of policy: approval requested."))
        return redirect(_trip_url(item.trip_id) + "#policy")


def _trip_url(trip_id: int) -> str:
    from django.urls import reverse

    return reverse("trip_detail", args=[trip_id])


# --- the compliance report ------------------------------------------------------------------------

PeriodForm = period_form(selectors.default_period)


class ComplianceReportView(AgencyPage, View):
    """Share of bookings in policy, exception reasons, missed savings, approvals, and the same trips
    priced within policy. ``?format=csv`` downloads it."""

    def get(self, request, pk):
        if not can_see_report(request.user):
            raise PermissionDenied
        account = _account(pk)
        form = PeriodForm(request.GET or None)
        date_from, date_to = form.period()
        report = selectors.compliance_report(account=account, date_from=date_from, date_to=date_to)
        if request.GET.get("format") == "csv":
            response = StreamingHttpResponse(report_csv(report), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = (f'attachment; filename="policy-report-{account.pk}-'
                                               f'{date_from.isoformat()}-{date_to.isoformat()}.csv"')
            return response
        return render(request, "frontend/policies/report.html", {"account": account, "form": form, "report": report,
                                                                 "query": request.GET.urlencode()})


# --- approvals ------------------------------------------------------------------------------------

class DecideForm(forms.Form):
    decision = forms.ChoiceField(label=gettext_lazy("Decision"), widget=forms.RadioSelect, choices=[
        (Approval.Status.APPROVED, gettext_lazy("Approve")), (Approval.Status.REJECTED, gettext_lazy("Reject"))])
    comment = forms.CharField(label=gettext_lazy("Comment"), required=False, max_length=2000,
                              widget=forms.Textarea(attrs={"rows": 3}))


class ApprovalListView(AgencyPage, View):
    """Pending for me (policy managers), or every approval I may see."""

    def get(self, request):
        show = request.GET.get("show", "mine" if request.user.can(Cap.POLICIES_MANAGE) else "all")
        status = request.GET.get("status", "")
        if show == "mine":
            approvals = selectors.pending_for_me(user=request.user)
        else:
            approvals = selectors.approvals_for(user=request.user, status=status)
        return render(request, "frontend/policies/approval_list.html", {
            "approvals": approvals[:200], "show": show, "status": status, "statuses": Approval.Status.choices,
            "can_manage": request.user.can(Cap.POLICIES_MANAGE)})


class ApprovalDetailView(AgencyPage, View):
    template = "frontend/policies/approval_detail.html"

    def _approval(self, request, pk) -> Approval:
        return get_object_or_404(selectors.approvals_for(user=request.user), pk=pk)

    def _page(self, request, approval, form=None, status=200):
        return render(request, self.template, {
            "approval": approval, "check": approval.booking_check,
            "results": selectors.explained(approval.booking_check.results),
            "can_decide": approval.is_pending and services.can_decide(request.user, approval),
            "is_requester": approval.requested_by_id == request.user.pk, "form": form or DecideForm()}, status=status)

    def get(self, request, pk):
        return self._page(request, self._approval(request, pk))

    def post(self, request, pk):
        approval = self._approval(request, pk)
        if not services.can_decide(request.user, approval):
            raise PermissionDenied
        form = DecideForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                try:
                    services.approval_decide(approval=approval, actor=request.user, **form.cleaned_data)
                except services.AlreadyDecided as exc:
                    messages.error(request, exc.messages[0])
                    return redirect("approval_detail", pk=approval.pk)
                messages.success(request, _("Decision recorded."))
                return redirect("approval_detail", pk=approval.pk)
        return self._page(request, approval, form, status=400)


class ApprovalAnswerView(View):
    """The approver's public page, reached from the e-mail. No sign-in: the signed link is the key."""

    template = "frontend/policies/approval_answer.html"

    def _approval(self, token):
        if current_agency() is None:
            raise Http404
        try:
            return services.approval_from_token(token)
        except services.InvalidApprovalLink:
            return None

    def _page(self, request, approval, form=None, status=200, **extra):
        return render(request, self.template, {
            "approval": approval, "check": approval.booking_check, "agency": require_agency(),
            "results": selectors.explained(approval.booking_check.results), "form": form or DecideForm(), **extra},
            status=status)

    def get(self, request, token):
        approval = self._approval(token)
        if approval is None:
            return render(request, "frontend/policies/approval_invalid.html", {}, status=404)
        return self._page(request, approval)

    def post(self, request, token):
        approval = self._approval(token)
        if approval is None:
            return render(request, "frontend/policies/approval_invalid.html", {}, status=404)
        form = DecideForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                try:
                    approval = services.approval_decide(approval=approval, by_link=True, **form.cleaned_data)
                except services.AlreadyDecided:
                    approval.refresh_from_db()
                    return self._page(request, approval, status=409, already=True)
                return self._page(request, approval, thanks=True)
        return self._page(request, approval, form, status=400)


# --- exchange rates -------------------------------------------------------------------------------

class RateForm(forms.Form):
    currency = forms.CharField(label=gettext_lazy("Currency"), max_length=3)
    rate = forms.DecimalField(label=gettext_lazy("Worth in the agency's currency"), max_digits=18, decimal_places=8)


class ExchangeRatesView(AgencyPage, View):
    """The rates policy checks convert offers with (admins)."""

    required_cap = Cap.SETTINGS_MANAGE
    template = "frontend/policies/exchange_rates.html"

    def _page(self, request, form=None, status=200):
        return render(request, self.template, {"rates": selectors.exchange_rates(), "form": form or RateForm(),
                                               "agency": require_agency()}, status=status)

    def get(self, request):
        return self._page(request)

    def post(self, request):
        if request.POST.get("delete"):
            services.exchange_rate_delete(actor=request.user, currency=request.POST["delete"])
            messages.success(request, _("Exchange rate removed."))
            return redirect("policy_exchange_rates")
        form = RateForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                services.exchange_rate_set(actor=request.user, **form.cleaned_data)
                messages.success(request, _("Exchange rate saved."))
                return redirect("policy_exchange_rates")
        return self._page(request, form, status=400)

