"""Trip pages (R-SALE-3 … 5): the list, the trip with travelers, itinerary, payments and document
checklists, the printable quote, and "Prepare quote" on an opportunity.

Thin views: every write goes through crm.trips.services, every non-trivial read through
crm.trips.selectors. Sales and service work trips (pipeline.work); finance sees them
(payments.view) and records payments (payments.record).
"""
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views import View

from accounts.models import User
from accounts.roles import Cap
from caravan.forms import apply_errors, errors_onto
from crm.customers.models import Customer
from crm.pipeline.models import Opportunity
from crm.policies import selectors as policy_selectors
from crm.customers.selectors import customer_search
from crm.trips import selectors, services
from crm.trips.models import ChecklistItem, ItineraryItem, Payment, Traveler, Trip

from . import destinations
from .base import AgencyPage
from .customers import DATE_INPUT, _next_url, staff_choices

PER_PAGE = 50
FILTERS = ("status", "owner", "depart_from", "depart_to", "payment", "documents")
PAYMENT_STATES = [("due", pgettext_lazy("money", "Due")), ("overdue", gettext_lazy("Overdue")), ("paid", gettext_lazy("Paid"))]
MONEY_INPUT = forms.TextInput(attrs={"inputmode": "decimal", "pattern": r"\d+(\.\d{1,2})?", "placeholder": "0.00"})


class TripPage(AgencyPage):
    """Seeing trips: whoever works the pipeline, and finance. Writes add their own ``required_cap``."""

    view_caps = (Cap.PIPELINE_WORK, Cap.PAYMENTS_VIEW)

    def permits(self, user) -> bool:
        return any(user.can(cap) for cap in self.view_caps)


def _trip(pk) -> Trip:
    try:
        return selectors.trip_detail(pk=pk)
    except Trip.DoesNotExist:
        raise Http404


# --- forms ----------------------------------------------------------------------------------------

class TripForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    destination = forms.CharField(label=gettext_lazy("Destination"), max_length=120, required=False)
    depart_on = forms.DateField(label=gettext_lazy("Departure"), required=False, widget=DATE_INPUT)
    return_on = forms.DateField(label=gettext_lazy("Return"), required=False, widget=DATE_INPUT)
    balance_due_on = forms.DateField(label=gettext_lazy("Balance due"), required=False, widget=DATE_INPUT,
                                     help_text=gettext_lazy("Left empty: 30 days before departure."))
    owner = forms.ModelChoiceField(label=gettext_lazy("Owner"), queryset=User.objects.none(), required=False)
    needs_visa = forms.BooleanField(label=gettext_lazy("Visa trip (document checklist per traveler)"), required=False)
    notes = forms.CharField(label=gettext_lazy("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, owner=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = staff_choices(owner)


class ItemForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=ItineraryItem.Kind.choices)
    description = forms.CharField(label=gettext_lazy("Description"), max_length=300)
    supplier = forms.CharField(label=gettext_lazy("Supplier"), max_length=120, required=False)
    starts_on = forms.DateField(label=pgettext_lazy("date range", "From"), required=False, widget=DATE_INPUT)
    ends_on = forms.DateField(label=pgettext_lazy("date range", "To"), required=False, widget=DATE_INPUT)
    confirmation = forms.CharField(label=gettext_lazy("Confirmation number"), max_length=60, required=False)
    cost = forms.CharField(label=gettext_lazy("Cost"), max_length=20, initial="0.00", widget=MONEY_INPUT)
    sell = forms.CharField(label=gettext_lazy("Sell price"), max_length=20, initial="0.00", widget=MONEY_INPUT)
    carrier = forms.CharField(label=gettext_lazy("Airline code"), max_length=3, required=False)
    number = forms.CharField(label=gettext_lazy("Flight number"), max_length=6, required=False)
    from_airport = forms.CharField(label=gettext_lazy("From airport"), max_length=4, required=False)
    to_airport = forms.CharField(label=gettext_lazy("To airport"), max_length=4, required=False)
    room_type = forms.CharField(label=gettext_lazy("Room type"), max_length=60, required=False)
    board = forms.CharField(label=pgettext_lazy("hotel meal plan", "Board"), max_length=60, required=False,
                            help_text=gettext_lazy("e.g. breakfast, half board"))

    DETAILS = ("carrier", "number", "from_airport", "to_airport", "room_type", "board")

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        kind = data["kind"]
        keys = services.DETAIL_FIELDS.get(kind, ())
        kwargs = {name: data[name] for name in ("kind", "description", "supplier", "starts_on", "ends_on",
                                                "confirmation", "cost", "sell")}
        kwargs["details"] = {key: data[key] for key in keys if data[key]}
        return kwargs

    @staticmethod
    def initial_for(item: ItineraryItem) -> dict:
        initial = {name: getattr(item, name) for name in ("kind", "description", "supplier", "starts_on", "ends_on",
                                                          "confirmation", "cost", "sell")}
        initial.update({key: item.details.get(key, "") for key in ItemForm.DETAILS})
        return initial


class TravelerForm(forms.Form):
    customer = forms.IntegerField(label=gettext_lazy("Traveler"), error_messages={
        "required": gettext_lazy("Search and choose a person.")})
    is_lead = forms.BooleanField(label=gettext_lazy("Lead traveler"), required=False)


class PaymentForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=Payment.Kind.choices)
    amount = forms.CharField(label=gettext_lazy("Amount"), max_length=20, widget=MONEY_INPUT)
    method = forms.ChoiceField(label=gettext_lazy("Method"), choices=Payment.Method.choices)
    received_on = forms.DateField(label=gettext_lazy("Date"), widget=DATE_INPUT)
    reference = forms.CharField(label=gettext_lazy("Reference"), max_length=100, required=False)
    note = forms.CharField(label=gettext_lazy("Note"), max_length=300, required=False)
    refund_of = forms.IntegerField(required=False, widget=forms.HiddenInput)


class CancelForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=300, required=False)


class ChecklistAddForm(forms.Form):
    document = forms.ChoiceField(label=gettext_lazy("Document"), choices=ChecklistItem.Document.choices)
    label = forms.CharField(label=gettext_lazy("Description"), max_length=120, required=False)


# --- the list -------------------------------------------------------------------------------------

class TripListView(TripPage, View):
    def get(self, request):
        raw = {key: request.GET.get(key, "").strip() for key in FILTERS}
        filters = dict(raw)
        if filters["owner"] == "me":
            filters["owner"] = request.user.pk
        elif filters["owner"] and not filters["owner"].isdigit():
            filters["owner"] = ""
        for key in ("depart_from", "depart_to"):
            try:
                filters[key] = forms.DateField().clean(filters[key]) if filters[key] else None
            except ValidationError:
                filters[key] = None
        if filters["status"] not in Trip.Status.values:
            filters["status"] = ""
        if filters["payment"] not in dict(PAYMENT_STATES):
            filters["payment"] = ""
        trips = selectors.trip_list(filters=filters).order_by("depart_on", "id")
        page = Paginator(trips, PER_PAGE).get_page(request.GET.get("page"))
        query = urlencode({key: value for key, value in raw.items() if value})
        return render(request, "frontend/trips/list.html", {
            "page": page, "filters": raw, "query": query, "totals": selectors.list_totals(trips),
            "statuses": Trip.Status.choices, "payment_states": PAYMENT_STATES, "staff": staff_choices(),
            "can_edit": request.user.can(Cap.PIPELINE_WORK), "currency": _currency()})


def _currency() -> str:
    from caravan.tenancy import require_agency

    return require_agency().currency


# --- create and edit ------------------------------------------------------------------------------

class TripCreateView(TripPage, View):
    """A trip made by staff for a customer, without an opportunity: it starts as a quote."""

    required_cap = Cap.PIPELINE_WORK

    def _customer(self, request):
        pk = request.GET.get("customer") or request.POST.get("customer") or ""
        if not pk.isdigit():
            return None
        return Customer.objects.filter(pk=pk).first()  # merged away: refused by the service, naming the survivor

    def get(self, request):
        form = TripForm(initial={"owner": request.user.pk}, owner=request.user)
        return render(request, "frontend/trips/form.html", {"form": form, "customer": self._customer(request)})

    def post(self, request):
        customer = self._customer(request)
        form = TripForm(request.POST)
        if customer is None:
            form.is_valid()
            form.add_error(None, _("Choose the customer who books the trip."))
        elif form.is_valid():
            data = form.cleaned_data
            with errors_onto(form):
                trip = services.trip_create(actor=request.user, customer=customer, **{
                    k: v for k, v in data.items() if k != "needs_visa"})
                if data["needs_visa"]:
                    services.trip_update(actor=request.user, trip=trip, needs_visa=True)
                messages.success(request, _("Quote %(ref)s created.") % {"ref": trip.reference})
                return redirect("trip_detail", pk=trip.pk)
        return render(request, "frontend/trips/form.html", {"form": form, "customer": customer}, status=400)


class TripEditView(TripPage, View):
    required_cap = Cap.PIPELINE_WORK

    def get(self, request, pk):
        trip = _trip(pk)
        initial = {name: getattr(trip, name) for name in ("title", "destination", "depart_on", "return_on",
                                                          "balance_due_on", "needs_visa", "notes")}
        initial["owner"] = trip.owner_id
        return render(request, "frontend/trips/form.html",
                      {"form": TripForm(initial=initial, owner=trip.owner), "trip": trip, "customer": trip.customer})

    def post(self, request, pk):
        trip = _trip(pk)
        form = TripForm(request.POST, owner=trip.owner)
        if form.is_valid():
            fields = dict(form.cleaned_data)
            if trip.status not in services.EDITABLE:
                fields = {"notes": fields["notes"]}
            if not fields.get("balance_due_on", True):
                fields["balance_due_on"] = services.default_balance_due(fields.get("depart_on"))
            with errors_onto(form):
                services.trip_update(actor=request.user, trip=trip, **fields)
                messages.success(request, _("Saved."))
                return redirect("trip_detail", pk=trip.pk)
        return render(request, "frontend/trips/form.html", {"form": form, "trip": trip, "customer": trip.customer},
                      status=400)


# --- the trip -------------------------------------------------------------------------------------

def detail_context(request, trip: Trip, **forms_given) -> dict:
    user = request.user
    travelers = selectors.trip_travelers(trip)
    can_edit = user.can(Cap.PIPELINE_WORK)
    context = {
        "trip": trip, "travelers": travelers, "items": list(trip.items.all()),
        "money": selectors.trip_money(trip), "live": trip.status in services.EDITABLE,
        "can_edit": can_edit, "can_pay": user.can(Cap.PAYMENTS_RECORD), "can_see_payments": user.can(Cap.PAYMENTS_VIEW),
        "next_statuses": sorted(services.TRANSITIONS[trip.status]) if can_edit else [],
        "item_form": forms_given.get("item_form") or ItemForm(initial={"starts_on": trip.depart_on,
                                                                      "ends_on": trip.return_on}),
        "traveler_form": forms_given.get("traveler_form") or TravelerForm(),
        "payment_form": forms_given.get("payment_form") or PaymentForm(initial={
            "kind": Payment.Kind.DEPOSIT, "received_on": services.agency_today()}),
        "cancel_form": forms_given.get("cancel_form") or CancelForm(),
        "checklist_form": ChecklistAddForm(),
        "open_form": forms_given.get("open_form", ""), "today": services.agency_today(),
    }
    if context["can_see_payments"]:
        context["payments"] = selectors.trip_payments(trip)
    context.update(policy_selectors.trip_context(trip=trip, user=user))  # policy checks and approvals
    context.update(destinations.trip_destination_context(trip, user))  # the destination's article, visa notes
    return context


def _detail(request, trip: Trip, status: int = 200, **forms_given):
    return render(request, "frontend/trips/detail.html", detail_context(request, trip, **forms_given), status=status)


class TripDetailView(TripPage, View):
    def get(self, request, pk):
        return _detail(request, _trip(pk))


class TripStatusView(TripPage, View):
    """The header's buttons: confirm, complete, cancel (with a reason)."""

    required_cap = Cap.PIPELINE_WORK

    def post(self, request, pk):
        trip = _trip(pk)
        to = request.POST.get("to", "")
        form = CancelForm(request.POST)
        form.is_valid()
        try:
            if to == Trip.Status.CONFIRMED:
                services.trip_confirm(actor=request.user, trip=trip)
            elif to == Trip.Status.COMPLETED:
                services.trip_complete(actor=request.user, trip=trip)
            elif to == Trip.Status.CANCELLED:
                services.trip_cancel(actor=request.user, trip=trip, reason=form.cleaned_data.get("reason", ""))
            else:
                services.check_transition(trip, to)
        except ValidationError as exc:
            if "reason" in getattr(exc, "message_dict", {}):
                apply_errors(form, exc)
                return _detail(request, _trip(pk), 400, cancel_form=form, open_form="cancel")
            for message in exc.messages:
                messages.error(request, message)
        else:
            trip = _trip(pk)
            messages.success(request, _("The trip is now %(status)s.") % {"status": trip.get_status_display().lower()})
        return redirect("trip_detail", pk=pk)


class TravelerChoicesView(TripPage, View):
    """Search-as-you-type for people to add as travelers (and customers to book a new trip)."""

    def get(self, request):
        query = request.GET.get("q", "").strip()
        kind = request.GET.get("kind", Customer.Kind.PERSON)
        found = [c for c in customer_search(query=query, limit=20) if not kind or c.kind == kind][:10] if query else []
        return render(request, "frontend/trips/_customer_choices.html",
                      {"found": found, "query": query, "field": request.GET.get("field", "customer")})


class TravelerAddView(TripPage, View):
    required_cap = Cap.PIPELINE_WORK

    def post(self, request, pk):
        trip = _trip(pk)
        form = TravelerForm(request.POST)
        if form.is_valid():
            customer = Customer.objects.filter(pk=form.cleaned_data["customer"]).first()
            if customer is None:
                form.add_error("customer", _("Search and choose a person."))
            else:
                with errors_onto(form):
                    services.traveler_add(actor=request.user, trip=trip, customer=customer,
                                          is_lead=form.cleaned_data["is_lead"])
                    messages.success(request, _("%(name)s added.") % {"name": customer.name})
                    return redirect(reverse("trip_detail", args=[pk]) + "#travelers")
        return _detail(request, trip, 400, traveler_form=form, open_form="traveler")


class TravelerActionView(TripPage, View):
    """Remove a traveler, make them the lead, or move their visa cancellation on."""

    required_cap = Cap.PIPELINE_WORK

    def post(self, request, pk, action):
        traveler = get_object_or_404(Traveler.objects.select_related("trip", "customer"), pk=pk)
        try:
            if action == "remove":
                services.traveler_remove(actor=request.user, traveler=traveler)
            elif action == "lead":
                services.traveler_set_lead(actor=request.user, traveler=traveler)
            elif action == "visa-cancellation":
                services.visa_cancellation_advance(actor=request.user, traveler=traveler, to=request.POST.get("to", ""))
            else:
                raise Http404
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        return redirect(reverse("trip_detail", args=[traveler.trip_id]) + "#travelers")


class ItemAddView(TripPage, View):
    required_cap = Cap.PIPELINE_WORK

    def post(self, request, pk):
        trip = _trip(pk)
        form = ItemForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                services.item_add(actor=request.user, trip=trip, **form.service_kwargs())
                return redirect(reverse("trip_detail", args=[pk]) + "#itinerary")
        return _detail(request, trip, 400, item_form=form, open_form="item")


class ItemEditView(TripPage, View):
    required_cap = Cap.PIPELINE_WORK

    def _item(self, pk):
        return get_object_or_404(ItineraryItem.objects.select_related("trip"), pk=pk)

    def get(self, request, pk):
        item = self._item(pk)
        return render(request, "frontend/trips/item_form.html",
                      {"form": ItemForm(initial=ItemForm.initial_for(item)), "item": item, "trip": item.trip})

    def post(self, request, pk):
        item = self._item(pk)
        if request.POST.get("remove"):
            try:
                services.item_remove(actor=request.user, item=item)
            except ValidationError as exc:
                for message in exc.messages:
                    messages.error(request, message)
            return redirect(reverse("trip_detail", args=[item.trip_id]) + "#itinerary")
        form = ItemForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                services.item_update(actor=request.user, item=item, **form.service_kwargs())
                return redirect(reverse("trip_detail", args=[item.trip_id]) + "#itinerary")
        return render(request, "frontend/trips/item_form.html", {"form": form, "item": item, "trip": item.trip},
                      status=400)


class PaymentRecordView(TripPage, View):
    """Record a deposit, a balance or a refund of a named payment (finance)."""

    required_cap = Cap.PAYMENTS_RECORD

    def post(self, request, pk):
        trip = _trip(pk)
        form = PaymentForm(request.POST)
        if form.is_valid():
            data = dict(form.cleaned_data)
            refund_of = None
            if data.pop("refund_of"):
                refund_of = Payment.objects.filter(pk=form.cleaned_data["refund_of"], trip=trip).first()
                if refund_of is None:
                    raise Http404
            with errors_onto(form):
                payment = services.payment_record(actor=request.user, trip=trip, refund_of=refund_of, **data)
                messages.success(request, _("%(kind)s of %(amount)s recorded.") % {
                    "kind": payment.get_kind_display(), "amount": services.money_display(payment.amount,
                                                                                         payment.currency)})
                return redirect(reverse("trip_detail", args=[pk]) + "#payments")
        return _detail(request, trip, 400, payment_form=form, open_form="payment")


class ChecklistView(TripPage, View):
    """Document checklist: one-click status buttons (htmx swaps the traveler's list), add, remove."""

    required_cap = Cap.PIPELINE_WORK

    def post(self, request, pk, action):
        if action == "add":
            traveler = get_object_or_404(Traveler.objects.select_related("trip"), pk=pk)
            form = ChecklistAddForm(request.POST)
            try:
                if not form.is_valid():
                    raise ValidationError(_("Choose a document."))
                services.checklist_item_add(actor=request.user, traveler=traveler, **form.cleaned_data)
            except ValidationError as exc:
                return self._answer(request, traveler, exc)
            return self._answer(request, traveler)
        item = get_object_or_404(ChecklistItem.objects.select_related("traveler__trip"), pk=pk)
        traveler = item.traveler
        try:
            if action == "status":
                services.checklist_item_set_status(actor=request.user, item=item, status=request.POST.get("to", ""))
            elif action == "remove":
                services.checklist_item_remove(actor=request.user, item=item)
            else:
                raise Http404
        except ValidationError as exc:
            return self._answer(request, traveler, exc)
        return self._answer(request, traveler)

    def _answer(self, request, traveler: Traveler, error: ValidationError | None = None):
        if not request.htmx:
            if error is not None:
                for message in error.messages:
                    messages.error(request, message)
            return redirect(reverse("trip_detail", args=[traveler.trip_id]) + f"#checklist-{traveler.pk}")
        traveler = Traveler.objects.select_related("trip", "customer").prefetch_related("checklist__changed_by").get(
            pk=traveler.pk)
        return render(request, "frontend/trips/_checklist.html", {
            "t": traveler, "trip": traveler.trip, "can_edit": True, "live": traveler.trip.status in services.EDITABLE,
            "checklist_form": ChecklistAddForm(), "checklist_error": error.messages if error else None},
            status=400 if error else 200)


class TripQuoteView(TripPage, View):
    """The printable quote: items and sell prices, never costs."""

    def get(self, request, pk):
        trip = _trip(pk)
        return render(request, "frontend/trips/quote.html", {
            "trip": trip, "items": list(trip.items.all()), "travelers": selectors.trip_travelers(trip),
            "money": selectors.trip_money(trip), "today": services.agency_today()})


class OpportunityQuoteView(AgencyPage, View):
    """"Prepare quote" on an opportunity: the trip in status quote, then its page to add the itinerary."""

    required_cap = Cap.PIPELINE_WORK

    def post(self, request, pk):
        opportunity = get_object_or_404(Opportunity, pk=pk)
        existing = Trip.objects.filter(opportunity=opportunity).exclude(status=Trip.Status.CANCELLED).first()
        if existing is not None:
            return redirect("trip_detail", pk=existing.pk)
        try:
            trip = services.quote_from_opportunity(actor=request.user, opportunity=opportunity)
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
            return redirect(_next_url(request, reverse("trip_list")))
        messages.success(request, _("Quote %(ref)s prepared: add the itinerary.") % {"ref": trip.reference})
        return redirect("trip_detail", pk=trip.pk)
