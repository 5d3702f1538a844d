"""Segment builder pages (R-CAMP-1): the list, the builder with its live count and preview, a
segment's page (re-evaluated on every visit), delete, and the CSV of its members.

Thin views: the form only reads what was typed into a definition; ``crm.segments.definition``
validates it (errors keyed by filter, shown on the filter's first field), ``services`` saves and
``selectors`` count, preview and describe.
"""
import re

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.models import User
from accounts.roles import Cap
from crm.customers.exports import export_customers_csv
from crm.customers.festivals import FESTIVAL_CHOICES
from crm.customers.models import Customer, Preferences
from crm.segments import selectors, services
from crm.segments.definition import validate
from crm.segments import filters
from crm.segments.models import Segment

from .base import AgencyPage
from .customer_details import INTEREST_CHOICES

ANY = [("", gettext_lazy("Any"))]
YES_NO = [("", gettext_lazy("Either")), ("true", gettext_lazy("Yes")), ("false", gettext_lazy("No"))]
SCORES = [("", "—")] + [(str(n), str(n)) for n in range(1, 6)]
_SPLIT = re.compile(r"[,，、;；\n]+")


def _text(label, **kwargs):
    return forms.CharField(label=label, required=False, max_length=2000, **kwargs)


def _number(label, low, high):
    return forms.IntegerField(label=label, required=False, min_value=low, max_value=high)


def _date(label):
    return forms.CharField(label=label, required=False, max_length=20,
                           widget=forms.TextInput(attrs={"placeholder": "-12m / 2025-05-01"}))


def _checks(label, choices):
    return forms.MultipleChoiceField(label=label, required=False, choices=choices, widget=forms.CheckboxSelectMultiple)


def _split(text: str) -> list[str]:
    return [part.strip() for part in _SPLIT.split(text or "") if part.strip()]


class SegmentForm(forms.Form):
    """The builder. Each filter is a group of fields (``GROUPS``); ``definition()`` turns what was
    typed into the JSON definition, and a filter's errors are shown on its first field."""

    name = forms.CharField(label=gettext_lazy("Name"), required=False, max_length=200)
    description = forms.CharField(label=gettext_lazy("Description"), required=False,
                                  widget=forms.Textarea(attrs={"rows": 2}))
    # profile
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), required=False, choices=ANY + list(Customer.Kind.choices))
    city = _text(gettext_lazy("City"), help_text=gettext_lazy("One or more, separated by commas: 上海, 北京."))
    age_min = _number(gettext_lazy("Age from"), 0, 120)
    age_max = _number(gettext_lazy("Age to"), 0, 120)
    tier = forms.MultipleChoiceField(label=gettext_lazy("Service tier"), required=False,
                                     widget=forms.CheckboxSelectMultiple)
    owner = forms.MultipleChoiceField(label=gettext_lazy("Account manager"), required=False)
    tags = _text(gettext_lazy("Tags"), help_text=gettext_lazy("Any of these tags, separated by commas."))
    # behaviour
    trips_min = _number(gettext_lazy("At least … trips"), 0, 10000)
    trips_max = _number(gettext_lazy("At most … trips"), 0, 10000)
    trips_from = _date(gettext_lazy("Trips from"))
    trips_to = _date(gettext_lazy("Trips to"))
    destination = _text(gettext_lazy("Destination"),
                        help_text=gettext_lazy("A trip whose destination contains one of these: 日本, Bali."))
    destination_exact = forms.BooleanField(label=gettext_lazy("Exact destination names"), required=False)
    destination_from = _date(gettext_lazy("Destination trips from"))
    destination_to = _date(gettext_lazy("Destination trips to"))
    spend_basis = forms.ChoiceField(label=gettext_lazy("Spend measured as"), required=False,
                                    choices=[("revenue", gettext_lazy("Revenue (sell price)")),
                                             ("margin", gettext_lazy("Margin (sell price − cost)"))])
    spend_min = _text(gettext_lazy("Spend at least"))
    spend_max = _text(gettext_lazy("Spend at most"))
    spend_from = _date(gettext_lazy("Spend from"))
    spend_to = _date(gettext_lazy("Spend to"))
    last_trip_after = _date(gettext_lazy("Last trip on or after"))
    last_trip_before = _date(gettext_lazy("Last trip before"))
    festival = forms.ChoiceField(label=gettext_lazy("Travelled at"), required=False, choices=ANY + FESTIVAL_CHOICES)
    festival_year = _number(gettext_lazy("In the year"), 2000, 2100)
    price_sensitivity = _checks(gettext_lazy("Price sensitivity"), Preferences.Sensitivity.choices)
    discount_min = _number(gettext_lazy("Discounted fares at least (%)"), 0, 100)
    discount_max = _number(gettext_lazy("Discounted fares at most (%)"), 0, 100)
    discount_from = _date(gettext_lazy("Fares from"))
    discount_to = _date(gettext_lazy("Fares to"))
    # preferences
    airline = _text(gettext_lazy("Preferred airline"), help_text=gettext_lazy("IATA codes: CA, MU."))
    cabin = _checks(gettext_lazy("Cabin"), Preferences.Cabin.choices)
    hotel_chain = _text(gettext_lazy("Hotel chain"), help_text=gettext_lazy("As on the card: 万豪, Hilton."))
    interest = _checks(gettext_lazy("Interests"), INTEREST_CHOICES)
    # value
    r_min, r_max = (forms.ChoiceField(label=label, required=False, choices=SCORES)
                    for label in (gettext_lazy("Recency from"), gettext_lazy("Recency to")))
    f_min, f_max = (forms.ChoiceField(label=label, required=False, choices=SCORES)
                    for label in (gettext_lazy("Frequency from"), gettext_lazy("Frequency to")))
    m_min, m_max = (forms.ChoiceField(label=label, required=False, choices=SCORES)
                    for label in (gettext_lazy("Monetary from"), gettext_lazy("Monetary to")))
    value_segment = _checks(gettext_lazy("Value segment"), [])
    quadrant = _checks(gettext_lazy("Scale × loyalty"), [])
    late_payer = forms.ChoiceField(label=gettext_lazy("Late payer"), required=False, choices=YES_NO)
    p_alive_min = _number(gettext_lazy("Probability still active from (%)"), 0, 100)
    p_alive_max = _number(gettext_lazy("Probability still active to (%)"), 0, 100)
    # contact
    emailable = forms.ChoiceField(label=gettext_lazy("May receive marketing e-mail"), required=False, choices=YES_NO)

    GROUPS = {  # filter → its fields (the first one carries the filter's errors)
        "kind": ["kind"], "city": ["city"], "age": ["age_min", "age_max"], "tier": ["tier"], "owner": ["owner"],
        "tags": ["tags"], "trips": ["trips_min", "trips_max", "trips_from", "trips_to"],
        "destination": ["destination", "destination_exact", "destination_from", "destination_to"],
        "spend": ["spend_min", "spend_max", "spend_basis", "spend_from", "spend_to"],
        "last_trip": ["last_trip_after", "last_trip_before"], "festival": ["festival", "festival_year"],
        "price_sensitivity": ["price_sensitivity"],
        "discount_share": ["discount_min", "discount_max", "discount_from", "discount_to"],
        "airline": ["airline"], "cabin": ["cabin"], "hotel_chain": ["hotel_chain"], "interest": ["interest"],
        "rfm": ["r_min", "r_max", "f_min", "f_max", "m_min", "m_max"], "value_segment": ["value_segment"],
        "quadrant": ["quadrant"], "late_payer": ["late_payer"], "p_alive": ["p_alive_min", "p_alive_max"],
        "emailable": ["emailable"],
    }
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from crm.tiers.models import ServiceTier

        self.fields["tier"].choices = [(str(t.pk), t.name) for t in ServiceTier.objects.order_by("rank")]
        staff = User.objects.filter(is_operator=False).order_by("-is_active", "full_name", "email")
        self.fields["owner"].choices = [("none", _("Nobody (unassigned)"))] + [
            (str(u.pk), u.full_name or u.email) for u in staff]
        segments, quadrants = selectors.value_choices()
        self.fields["value_segment"].choices = list(segments.items())
        self.fields["quadrant"].choices = list(quadrants.items())
        self.fields["spend_basis"].initial = "revenue"
        # An interest a segment saved before the builder listed them (typed by hand) stays choosable.
        saved = set(self.data.getlist("interest") if hasattr(self.data, "getlist") else [])
        saved |= set(self.initial.get("interest") or [])
        self.fields["interest"].choices = INTEREST_CHOICES + [(v, v) for v in sorted(saved - set(Preferences.INTERESTS))]

    def sections(self):
        """For the template: ``[(title, [(filter, [bound fields])])]``."""
        return [(title, [(key, [self[name] for name in self.GROUPS[key]])
                         for key, f in filters.FILTERS.items() if f.group == group])  # read when shown: apps add filters
                for group, title in filters.GROUPS.items()]

    def definition(self) -> dict:
        """What was typed, as a (not yet validated) definition. Call after ``is_valid()``."""
        d = self.cleaned_data
        raw = {
            "kind": d.get("kind") or None,
            "city": _split(d.get("city")),
            "age": {"min": d.get("age_min"), "max": d.get("age_max")},
            "tier": [int(pk) for pk in d.get("tier") or []],
            "owner": [v if v == "none" else int(v) for v in d.get("owner") or []],
            "tags": _split(d.get("tags")),
            "trips": {"min": d.get("trips_min"), "max": d.get("trips_max"), "from": d.get("trips_from"),
                      "to": d.get("trips_to")},
            "destination": {"any": _split(d.get("destination")), "exact": d.get("destination_exact") or None,
                            "from": d.get("destination_from"), "to": d.get("destination_to")},
            "spend": {"min": d.get("spend_min"), "max": d.get("spend_max"), "from": d.get("spend_from"),
                      "to": d.get("spend_to")},
            "last_trip": {"after": d.get("last_trip_after"), "before": d.get("last_trip_before")},
            "festival": {"key": d.get("festival"), "year": d.get("festival_year")},
            "price_sensitivity": d.get("price_sensitivity") or [],
            "discount_share": {"min": d.get("discount_min"), "max": d.get("discount_max"),
                               "from": d.get("discount_from"), "to": d.get("discount_to")},
            "airline": _split(d.get("airline")),
            "cabin": d.get("cabin") or [],
            "hotel_chain": _split(d.get("hotel_chain")),
            "interest": d.get("interest") or [],
            "rfm": {key: d.get(key) or None for key in ("r_min", "r_max", "f_min", "f_max", "m_min", "m_max")},
            "value_segment": d.get("value_segment") or [],
            "quadrant": d.get("quadrant") or [],
            "late_payer": d.get("late_payer") or None,
            "p_alive": {"min": d.get("p_alive_min"), "max": d.get("p_alive_max")},
            "emailable": d.get("emailable") or None,
        }
        # A group counts as set when one of its own values is (a lone basis or period sets nothing).
        for key in ("trips", "destination", "spend", "discount_share", "festival"):
            main = {"trips": ("min", "max", "from", "to"), "destination": ("any",), "spend": ("min", "max"),
                    "discount_share": ("min", "max"), "festival": ("key",)}[key]
            if all(raw[key].get(k) in (None, "", []) for k in main):
                raw[key] = None
        if raw["spend"]:
            raw["spend"]["basis"] = d.get("spend_basis") or "revenue"
        return {k: _compact(v) for k, v in raw.items() if _compact(v) not in (None, "", [], {})}

    def add_definition_errors(self, exc: ValidationError) -> None:
        """A ValidationError keyed by filter (or by name/description) onto the fields."""
        for key, errors in exc.message_dict.items():
            if key in self.fields:
                self.add_error(key, errors)
            elif key in self.GROUPS:
                self.add_error(self.GROUPS[key][0], errors)
            else:
                self.add_error(None, errors)

    @classmethod
    def initial_from(cls, segment: Segment) -> dict:
        """The form's initial values for a saved segment."""
        d = segment.definition or {}
        initial = {"name": segment.name, "description": segment.description, "kind": d.get("kind", "")}
        for key in ("city", "tags", "airline", "hotel_chain"):
            initial[key] = ", ".join(d.get(key, []))
        for key in ("price_sensitivity", "cabin", "value_segment", "quadrant", "interest"):
            initial[key] = d.get(key, [])
        initial["tier"] = [str(pk) for pk in d.get("tier", [])]
        initial["owner"] = [str(v) for v in d.get("owner", [])]
        for key, prefix, parts in (("age", "age", ("min", "max")), ("trips", "trips", ("min", "max", "from", "to")),
                                   ("spend", "spend", ("min", "max", "from", "to", "basis")),
                                   ("discount_share", "discount", ("min", "max", "from", "to")),
                                   ("p_alive", "p_alive", ("min", "max")), ("last_trip", "last_trip", ("after", "before")),
                                   ("destination", "destination", ("from", "to", "exact"))):
            for part in parts:
                if part in d.get(key, {}):
                    initial[f"{prefix}_{part}"] = d[key][part]
        if "destination" in d:
            initial["destination"] = ", ".join(d["destination"]["any"])
        if "festival" in d:
            initial["festival"] = d["festival"]["key"]
            initial["festival_year"] = d["festival"].get("year")
        for key, bound in d.get("rfm", {}).items():
            initial[key] = str(bound)
        for key in ("late_payer", "emailable"):
            if key in d:
                initial[key] = "true" if d[key] else "false"
        return initial


def _compact(value):
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if v not in (None, "", [])}
    return value


def _builder_form(request) -> SegmentForm:
    """The builder's form from the query string (the live count and preview send the whole form)."""
    return SegmentForm(request.GET)


def _evaluate(form: SegmentForm) -> tuple[dict | None, dict]:
    """(the cleaned definition, {}) or (None, errors by field) for the fragments."""
    if not form.is_valid():
        return None, form.errors
    try:
        return validate(form.definition()), {}
    except ValidationError as exc:
        form.add_definition_errors(exc)
        return None, form.errors


# --- pages ----------------------------------------------------------------------------------------

class SegmentListView(AgencyPage, View):
    required_cap = Cap.CAMPAIGNS_MANAGE

    def get(self, request):
        return render(request, "frontend/segments/list.html", {"segments": selectors.segment_list()})


class SegmentBuilderView(AgencyPage, View):
    """New segment (``/segments/new/``) or change one (``/segments/<id>/edit/``)."""

    required_cap = Cap.CAMPAIGNS_MANAGE
    template = "frontend/segments/builder.html"

    def _render(self, request, form, segment, status=200, count=None):
        return render(request, self.template, {"form": form, "segment": segment, "count": count,
                                               "labels": selectors.filter_labels()}, status=status)

    def get(self, request, pk=None):
        segment = selectors.segment_access(pk) if pk is not None else None
        form = SegmentForm(initial=SegmentForm.initial_from(segment)) if segment else SegmentForm()
        count = selectors.segment_count(segment.definition if segment else {})
        return self._render(request, form, segment, count=count)

    def post(self, request, pk=None):
        segment = selectors.segment_access(pk) if pk is not None else None
        form = SegmentForm(request.POST)
        if form.is_valid():
            try:
                saved = services.segment_save(actor=request.user, segment=segment, name=form.cleaned_data["name"],
                                              description=form.cleaned_data["description"],
                                              definition=form.definition())
            except ValidationError as exc:
                form.add_definition_errors(exc)
            else:
                messages.success(request, _("Segment saved: %(n)d customers match now.") % {"n": saved.last_count})
                return redirect("segment_detail", pk=saved.pk)
        return self._render(request, form, segment, status=400)


class SegmentCountView(AgencyPage, View):
    """The live count fragment: the builder sends its whole form on every change."""

    required_cap = Cap.CAMPAIGNS_MANAGE

    def get(self, request):
        form = _builder_form(request)
        definition, errors = _evaluate(form)
        count = selectors.segment_count(definition) if definition is not None else None
        problems = [(form.fields[name].label if name in form.fields else "", e)
                    for name, messages_ in errors.items() if name not in ("name", "description")
                    for e in messages_]
        return render(request, "frontend/segments/_count.html", {"count": count, "problems": problems})


class SegmentPreviewView(AgencyPage, View):
    """The first customers the builder's filters select, linking to their cards."""

    required_cap = Cap.CAMPAIGNS_MANAGE

    def get(self, request):
        form = _builder_form(request)
        definition, errors = _evaluate(form)
        customers = selectors.preview(definition) if definition is not None else None
        return render(request, "frontend/segments/_preview.html", {"customers": customers, "invalid": bool(errors)})


class SegmentDetailView(AgencyPage, View):
    """A saved segment, evaluated now: its filters in words, its count and its first customers."""

    required_cap = Cap.CAMPAIGNS_MANAGE

    def get(self, request, pk):
        segment = selectors.segment_access(pk)
        services.segment_evaluate(segment=segment)
        return render(request, "frontend/segments/detail.html", {
            "segment": segment, "filters": selectors.describe(segment.definition),
            "customers": selectors.preview(segment.definition),
            "can_export": request.user.can(Cap.CUSTOMERS_IMPORT),
        })


class SegmentDeleteView(AgencyPage, View):
    required_cap = Cap.CAMPAIGNS_MANAGE

    def post(self, request, pk):
        segment = selectors.segment_access(pk)
        try:
            services.segment_delete(actor=request.user, segment=segment)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("segment_detail", pk=segment.pk)
        messages.success(request, _("Segment “%(name)s” deleted.") % {"name": segment.name})
        return redirect("segment_list")


class SegmentExportView(AgencyPage, View):
    """The segment's customers now, as CSV (UTF-8 with a BOM, formula-safe cells)."""

    required_cap = Cap.CAMPAIGNS_MANAGE

    def get(self, request, pk):
        if not request.user.can(Cap.CUSTOMERS_IMPORT):
            raise PermissionDenied
        segment = selectors.segment_access(pk)
        services.segment_evaluate(segment=segment)
        response = StreamingHttpResponse(export_customers_csv(selectors.members(segment.definition)),
                                         content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="segment-{segment.pk}-{stamp}.csv"'
        return response
