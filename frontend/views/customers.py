"""Customer 360 pages: the list, create/edit, the card with its timeline and history, the screen pop.

Thin views: every write goes through crm.customers.services (audited ``via=page`` or ``bulk``), every
non-trivial read through crm.customers.selectors.
"""
import re
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.models import User
from accounts.roles import Cap
from caravan.forms import apply_errors, errors_onto
from caravan.tenancy import require_agency
from crm.customers import list_filters as extra_filters, selectors, services
from crm.campaigns import selectors as campaigns_selectors
from crm.care import selectors as care_selectors
from crm.loyalty import selectors as loyalty_selectors
from crm.pipeline import selectors as pipeline_selectors
from crm.policies import selectors as policies_selectors
from crm.privacy import selectors as privacy_selectors
from crm.privacy import services as privacy
from crm.retention import services as retention
from crm.tiers import selectors as tiers_selectors
from crm.trips import selectors as trips_selectors
from crm.value import selectors as value_selectors
from crm.visits import selectors as visits_selectors
from crm.customers.models import ChangeLog, Contact, Customer
from crm.customers.normalize import phone_display
from crm.customers.snapshot import CREATED, created_values

from .base import AgencyPage

Via = ChangeLog.Via
PER_PAGE = 50
SORTS = {"name": ("name", "pk"), "-name": ("-name", "-pk"), "created": ("created_at", "pk"),
         "-created": ("-created_at", "-pk"), "updated": ("updated_at", "pk"), "-updated": ("-updated_at", "-pk")}
FILTERS = ("q", "kind", "owner", "tag", "source", "tier")  # and the other apps' (crm.customers.list_filters)
TAG_SPLIT = re.compile(r"[,，;；]")
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def staff_choices(current: User | None = None):
    """Active colleagues, plus the current owner even if they have left (so an edit keeps them)."""
    extra = Q(pk=current.pk) if current is not None else Q(pk__in=[])
    return User.objects.filter(Q(is_active=True) | extra).order_by("full_name", "email")


def _next_url(request, fallback: str) -> str:
    target = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return fallback


# --- list and bulk actions ------------------------------------------------------------------------

def list_filters(params, user=None) -> tuple[dict, dict, dict]:
    """The list's filters from a query string: as typed (every key), those given, and as
    ``crm.customers.selectors.customer_list`` takes them. The list page and its export share them. A
    registered filter that needs a capability (value's segment, quadrant, rfm) is dropped for a ``user``
    without it."""
    extra = extra_filters.registered()
    filters = {key: params.get(key, "").strip() for key in FILTERS + tuple(f.key for f in extra)}
    if user is not None:
        filters.update({f.key: "" for f in extra if f.cap and not user.can(f.cap)})
    given = {key: value for key, value in filters.items() if value}
    selector_filters = dict(given)
    if filters["owner"] == "none":
        selector_filters.pop("owner")
        selector_filters["unowned"] = True
    elif filters["owner"] and not filters["owner"].isdigit():
        selector_filters.pop("owner")
    return filters, given, selector_filters


class CustomerListView(AgencyPage, View):
    required_cap = Cap.CUSTOMERS_VIEW

    def get(self, request):
        filters, query, selector_filters = list_filters(request.GET, request.user)
        sort = request.GET.get("sort", "name")
        if sort not in SORTS:
            sort = "name"
        customers = selectors.customer_list(filters=selector_filters).order_by(*SORTS[sort])
        page = Paginator(customers, PER_PAGE).get_page(request.GET.get("page"))
        tiers = tiers_selectors.tiers_for(c.pk for c in page)
        user = request.user
        values = value_selectors.values_for(c.pk for c in page) if user.can(Cap.VALUE_VIEW) else {}
        for c in page:
            c.service_tier = tiers.get(c.pk)
            c.customer_value = values.get(c.pk)
        choices = {f.key: f.choices for f in extra_filters.registered()}
        context = {
            "page": page, "filters": filters, "sort": sort, "filter_query": urlencode(query),
            "sort_query": urlencode({**query, "sort": sort}),
            "kinds": Customer.Kind.choices, "sources": Customer.Source.choices, "staff": staff_choices(),
            "tiers": tiers_selectors.tier_list(),
            "sees_value": user.can(Cap.VALUE_VIEW), "segments": choices.get("segment", ()),
            "quadrants": choices.get("quadrant", ()),
            "can_edit": user.can(Cap.CUSTOMERS_EDIT), "can_manage": user.can(Cap.CUSTOMERS_MANAGE),
            "can_import": user.can(Cap.CUSTOMERS_IMPORT),
            "sort_links": {key: {"next": f"-{key}" if sort == key else key,
                                 "arrow": "▲" if sort == key else "▼" if sort == f"-{key}" else ""}
                           for key in ("name", "created", "updated")},
        }
        partial = request.htmx and not request.htmx.history_restore_request
        template = "frontend/customers/_results.html" if partial else "frontend/customers/list.html"
        return render(request, template, context)


class BulkForm(forms.Form):
    owner = forms.ModelChoiceField(label=gettext_lazy("Assign owner"), queryset=User.objects.none(), required=False)
    tag = forms.CharField(label=gettext_lazy("Add tag"), max_length=40, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = staff_choices()

    def clean(self):
        data = super().clean()
        if not data.get("owner") and not (data.get("tag") or "").strip():
            raise ValidationError(_("Choose an owner to assign or a tag to add."))
        return data


class CustomerBulkView(AgencyPage, View):
    required_cap = Cap.CUSTOMERS_MANAGE

    def post(self, request):
        back = _next_url(request, reverse("customer_list"))
        ids = [int(v) for v in request.POST.getlist("ids") if v.isdigit()]
        form = BulkForm(request.POST)
        if not ids:
            messages.error(request, _("Select at least one customer."))
        elif not form.is_valid():
            messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        else:
            try:  # a merged-away record among them (MergedAway) refuses the whole change
                count = services.customers_bulk_update(actor=request.user, via=Via.BULK,
                                                       customers=Customer.objects.filter(pk__in=ids),
                                                       owner=form.cleaned_data["owner"],
                                                       add_tag=form.cleaned_data["tag"].strip())
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, _("%(count)d customers updated.") % {"count": count})
        return redirect(back)


# --- create and edit ------------------------------------------------------------------------------

class CustomerForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=Customer.Kind.choices)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200, required=False,
                           help_text=gettext_lazy("As the customer writes it, e.g. 王芳 or ACME Ltd."))
    latin_surname = forms.CharField(label=gettext_lazy("Surname (as in passport)"), max_length=100, required=False)
    latin_given = forms.CharField(label=gettext_lazy("Given names (as in passport)"), max_length=100, required=False)
    gender = forms.ChoiceField(label=gettext_lazy("Gender"), required=False,
                               choices=[("", "—"), *Customer._meta.get_field("gender").choices])
    birthday = forms.DateField(label=gettext_lazy("Birthday"), required=False, widget=DATE_INPUT)
    language = forms.ChoiceField(label=gettext_lazy("Language"), choices=settings.LANGUAGES)
    source = forms.ChoiceField(label=gettext_lazy("Source channel"), choices=Customer.Source.choices)
    owner = forms.ModelChoiceField(label=gettext_lazy("Account manager"), queryset=User.objects.none(), required=False)
    tags = forms.CharField(label=gettext_lazy("Tags"), required=False, help_text=gettext_lazy("Separated by commas."))
    industry = forms.CharField(label=gettext_lazy("Industry"), max_length=100, required=False)
    notes = forms.CharField(label=gettext_lazy("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    address_line = forms.CharField(label=gettext_lazy("Address"), max_length=300, required=False)
    address_city = forms.CharField(label=gettext_lazy("City"), max_length=100, required=False)
    address_postcode = forms.CharField(label=gettext_lazy("Postcode"), max_length=20, required=False)
    address_country = forms.CharField(label=gettext_lazy("Country"), max_length=2, min_length=2, required=False,
                                      help_text=gettext_lazy("Two-letter code, e.g. CN."))

    def __init__(self, *args, customer: Customer | None = None, phone_count=3, email_count=2, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = staff_choices(customer.owner if customer and customer.owner_id else None)
        for i in range(1, phone_count + 1):
            self.fields[f"phone_{i}"] = forms.CharField(label=_("Phone %(n)d") % {"n": i}, max_length=40,
                                                        required=False, widget=forms.TextInput(attrs={"type": "tel"}))
        for i in range(1, email_count + 1):
            self.fields[f"email_{i}"] = forms.CharField(label=_("E-mail %(n)d") % {"n": i}, max_length=254,
                                                        required=False, widget=forms.EmailInput())
        self.fields["name"].widget.attrs.update({
            "hx-get": reverse("customer_similar"), "hx-trigger": "input changed delay:300ms",
            "hx-target": "#similar-customers", "autocomplete": "off", "autofocus": True,
            **({"hx-vals": f'{{"exclude": "{customer.pk}"}}'} if customer else {})})

    @property
    def phone_fields(self):
        return [self[n] for n in self.fields if n.startswith("phone_")]

    @property
    def email_fields(self):
        return [self[n] for n in self.fields if n.startswith("email_")]

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        kwargs = {name: data[name] for name in ("kind", "name", "latin_surname", "latin_given", "gender", "birthday",
                                                "language", "source", "owner", "notes", "industry")}
        kwargs["tags"] = [t for t in TAG_SPLIT.split(data["tags"]) if t.strip()]
        kwargs["phones"] = [data[n] for n in self.fields if n.startswith("phone_")]
        kwargs["emails"] = [data[n] for n in self.fields if n.startswith("email_")]
        kwargs["addresses"] = []
        if data["address_line"].strip():
            kwargs["addresses"].append({
                "line": data["address_line"].strip(), "city": data["address_city"].strip(),
                "postcode": data["address_postcode"].strip(),
                "country": (data["address_country"] or require_agency().default_region).upper()})
        return kwargs

    def apply_service_errors(self, exc: ValidationError) -> None:
        """A service's "phones"/"emails" errors go next to the field holding the offending value."""
        if not hasattr(exc, "error_dict"):
            apply_errors(self, exc)
            return
        for key, errors in exc.message_dict.items():
            group = {"phones": "phone_", "emails": "email_"}.get(key)
            if group is None:
                self.add_error(key if key in self.fields else None, errors)
                continue
            names = [n for n in self.fields if n.startswith(group)]
            for message in errors:
                typed = [n for n in names if self.data.get(n, "").strip() and self.data[n].strip() in message]
                culprit = typed[0] if typed else names[0]
                self.add_error(culprit, message)


def _initial(customer: Customer) -> dict:
    initial = {name: getattr(customer, name) for name in ("kind", "name", "latin_surname", "latin_given", "gender",
                                                          "birthday", "language", "source", "notes", "industry")}
    initial["owner"] = customer.owner_id
    initial["tags"] = ", ".join(customer.tags)
    for i, phone in enumerate(customer.phones.all(), 1):
        initial[f"phone_{i}"] = phone.number
    for i, email in enumerate(customer.emails.all(), 1):
        initial[f"email_{i}"] = email.address
    address = customer.addresses.first()
    if address is not None:
        initial.update(address_line=address.line, address_city=address.city, address_postcode=address.postcode,
                       address_country=address.country)
    return initial


class CustomerCreateView(AgencyPage, View):
    required_cap = Cap.CUSTOMERS_EDIT
    template = "frontend/customers/form.html"

    def get(self, request):
        agency = require_agency()
        phone = request.GET.get("phone", "").strip()
        initial = {"kind": Customer.Kind.PERSON, "language": agency.language, "owner": request.user.pk,
                   "source": Customer.Source.CALL_CENTER if phone else Customer.Source.OTHER,
                   "phone_1": phone, "address_country": agency.default_region}
        return render(request, self.template, {"form": CustomerForm(initial=initial)})

    def post(self, request):
        form = CustomerForm(request.POST)
        duplicates = None
        if form.is_valid():
            with errors_onto(form):
                try:
                    customer = services.customer_create(actor=request.user, via=Via.PAGE, **form.service_kwargs())
                except services.DuplicateCustomer as exc:
                    duplicates = exc
                else:
                    messages.success(request, _("Customer %(name)s created.") % {"name": customer.name})
                    return redirect("customer_detail", pk=customer.pk)
        return render(request, self.template, {"form": form, "duplicates": duplicates},
                      status=409 if duplicates else 400)


class CustomerEditView(AgencyPage, View):
    required_cap = Cap.CUSTOMERS_EDIT
    template = "frontend/customers/form.html"

    def _customer(self, pk):
        return get_object_or_404(Customer.objects.select_related("owner", "merged_into")
                                 .prefetch_related("phones", "emails", "addresses"), pk=pk)

    def _form(self, customer, **kwargs):
        return CustomerForm(customer=customer, phone_count=max(3, len(customer.phones.all())),
                            email_count=max(2, len(customer.emails.all())), **kwargs)

    def get(self, request, pk):
        customer = self._customer(pk)
        if customer.merged_into_id:
            return redirect("customer_edit", pk=services.customer_survivor(customer).pk)
        form = self._form(customer, initial=_initial(customer))
        return render(request, self.template, {"form": form, "customer": customer,
                                               "more_addresses": customer.addresses.all()[1:]})

    def post(self, request, pk):
        customer = self._customer(pk)
        form = self._form(customer, data=request.POST)
        duplicates = None
        if form.is_valid():
            kwargs = form.service_kwargs()
            # The form edits the first address; any further ones (from an import or a merge) are kept.
            kwargs["addresses"] += [{"label": a.label, "line": a.line, "city": a.city, "postcode": a.postcode,
                                     "country": a.country} for a in customer.addresses.all()[1:]]
            with errors_onto(form):
                try:
                    services.customer_update(actor=request.user, via=Via.PAGE, customer=customer, **kwargs)
                except services.DuplicateCustomer as exc:
                    duplicates = exc
                else:
                    messages.success(request, _("Saved."))
                    return redirect("customer_detail", pk=customer.pk)
        return render(request, self.template, {"form": form, "customer": customer, "duplicates": duplicates,
                                               "more_addresses": customer.addresses.all()[1:]},
                      status=409 if duplicates else 400)


class CustomerSimilarView(AgencyPage, View):
    """Possibly-same customers while a name is typed (R-CUST-7)."""

    required_cap = Cap.CUSTOMERS_VIEW

    def get(self, request):
        exclude = request.GET.get("exclude", "")
        exclude = Customer.objects.filter(pk=exclude).first() if exclude.isdigit() else None
        similar = selectors.similar_customers(name=request.GET.get("name", ""), exclude=exclude)
        return render(request, "frontend/customers/_similar.html", {"similar": similar})


# --- the card, its timeline and history -----------------------------------------------------------

# Complaints, trips and surveys reach the timeline through their own forms and jobs.
TYPED_CHANNELS = [(value, label) for value, label in Contact.Channel.choices
                  if value not in (Contact.Channel.COMPLAINT, Contact.Channel.TRIP, Contact.Channel.SURVEY)]


class ContactForm(forms.Form):
    channel = forms.ChoiceField(label=gettext_lazy("Channel"), choices=TYPED_CHANNELS)
    direction = forms.ChoiceField(label=gettext_lazy("Direction"), choices=Contact.Direction.choices)
    summary = forms.CharField(label=gettext_lazy("Summary"), required=False,
                              widget=forms.Textarea(attrs={"rows": 2, "placeholder": gettext_lazy(
                                  "What was said or done? (Ctrl+Enter saves)")}))
    next_step = forms.CharField(label=gettext_lazy("Next step"), max_length=300, required=False)
    next_step_due = forms.DateField(label=gettext_lazy("Due"), required=False, widget=DATE_INPUT)


def contact_form(direction: str = Contact.Direction.OUTBOUND) -> ContactForm:
    return ContactForm(initial={"channel": Contact.Channel.CALL, "direction": direction})


def timeline_context(customer: Customer) -> dict:
    return {"contacts": Contact.objects.filter(customer=customer).select_related("staff"),
            "today": timezone.localdate()}


class CustomerDetailView(AgencyPage, View):
    required_cap = Cap.CUSTOMERS_VIEW

    def get(self, request, pk):
        context = self.context(request, pk, contact_form())
        privacy.access_record(user=request.user, customer=context["customer"], what=privacy.What.CARD_VIEW,
                              via=privacy.Via.PAGE)
        return render(request, "frontend/customers/detail.html", context)

    @staticmethod
    def context(request, pk, form) -> dict:
        try:
            customer = selectors.customer_card(pk=pk)
        except Customer.DoesNotExist:
            raise Http404
        user = request.user
        return {
            "customer": customer, "contact_form": form, **timeline_context(customer),
            "phones": [phone_display(p.number) for p in customer.phones.all()],
            "can_edit": user.can(Cap.CUSTOMERS_EDIT), "can_manage": user.can(Cap.CUSTOMERS_MANAGE),
            "can_erase": user.can(Cap.CUSTOMERS_ERASE), "erased": retention.is_erased(customer),
            "can_see_documents": user.can(Cap.DOCUMENTS_VIEW),
            **pipeline_selectors.card_context(customer=customer, user=user),
            **trips_selectors.card_context(customer=customer, user=user),
            **care_selectors.card_context(customer=customer, user=user),
            **policies_selectors.card_context(customer=customer, user=user),
            **tiers_selectors.card_context(customer=customer, user=user),
            **visits_selectors.card_context(customer=customer, user=user),
            **value_selectors.card_context(customer=customer, user=user),
            **campaigns_selectors.card_context(customer=customer, user=user),
            **loyalty_selectors.card_context(customer=customer, user=user),
            **privacy_selectors.card_context(customer=customer, user=user),
        }


class ContactAddView(AgencyPage, View):
    """The quick-add form: with htmx the new entry comes back to be prepended to the timeline, and a
    fresh form replaces the used one; field errors come back as the form, swapped in its place."""

    required_cap = Cap.CUSTOMERS_EDIT

    def post(self, request, pk):
        customer = get_object_or_404(Customer, pk=pk)
        form = ContactForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                contact = services.contact_add(actor=request.user, customer=customer, **form.cleaned_data)
                if not request.htmx:
                    messages.success(request, _("Contact added."))
                    return redirect("customer_detail", pk=customer.pk)
                fresh = contact_form(direction=form.cleaned_data["direction"])
                html = (render_to_string("frontend/customers/_contact.html",
                                         {"c": contact, "today": timezone.localdate()}, request)
                        + render_to_string("frontend/customers/_contact_form.html",
                                           {"customer": customer, "contact_form": fresh, "oob": True}, request))
                return HttpResponse(html)
        if request.htmx:
            response = render(request, "frontend/customers/_contact_form.html",
                              {"customer": customer, "contact_form": form})
            response["HX-Retarget"] = "#contact-form"
            response["HX-Reswap"] = "outerHTML"
            return response
        return render(request, "frontend/customers/detail.html",
                      CustomerDetailView.context(request, customer.pk, form), status=400)


# What the history calls a change's field: a customer field by its translated name, else what the audit writes.
HISTORY_FIELDS = {
    "phones": gettext_lazy("Phones"), "emails": gettext_lazy("E-mails"), "addresses": gettext_lazy("Addresses"),
    "documents": gettext_lazy("Travel documents"), CREATED: gettext_lazy("Record created"),
    "merged": gettext_lazy("Records merged"), "family_dates": gettext_lazy("Family dates"),
}


def history_field_label(name: str) -> str:
    from django.core.exceptions import FieldDoesNotExist
    from django.utils.text import capfirst

    if name in HISTORY_FIELDS:
        return str(HISTORY_FIELDS[name])
    group, _dot, part = name.partition(".")
    if group == "preferences" and part:  # preferences.seat: one preference (customer_preferences_set)
        from crm.customers.models import Preferences

        try:
            label = Preferences._meta.get_field(part).verbose_name
        except FieldDoesNotExist:
            label = part
        return f"{capfirst(gettext_lazy('Preferences'))}: {label}"
    if group == "loyalty" and part:  # loyalty.CA: a loyalty programme's membership (loyalty_set)
        return f"{gettext_lazy('Loyalty programme')} {part}"
    try:
        return capfirst(Customer._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


# The recorded values the history shows by their (lazily translated) labels.
HISTORY_CHOICES = {name: dict(Customer._meta.get_field(name).flatchoices) for name in ("kind", "gender")}


def history_value(name: str, value: str) -> str:
    """A recorded value as the history shows it: a choice (kind, gender) by its label in the reader's language."""
    if (labels := HISTORY_CHOICES.get(name)) is not None and value in labels:
        return str(labels[value])
    return value


class CustomerHistoryView(AgencyPage, View):
    required_cap = Cap.CUSTOMERS_VIEW

    def get(self, request, pk):
        customer = get_object_or_404(Customer, pk=pk)
        privacy.access_record(user=request.user, customer=customer, what=privacy.What.HISTORY_VIEW,
                              via=privacy.Via.PAGE)
        changes = list(ChangeLog.objects.filter(customer=customer).select_related("actor"))
        for change in changes:
            change.field_label = history_field_label(change.field)
            change.values = None  # a creation: one entry with every value the record was created with
            if change.field == CREATED:
                change.values = [(history_field_label(name), history_value(name, value))
                                 for name, value in created_values(change.new).items()]
            else:
                change.old, change.new = history_value(change.field, change.old), history_value(change.field, change.new)
        template = "frontend/customers/_history.html" if request.htmx else "frontend/customers/history.html"
        return render(request, template, {"customer": customer, "changes": changes})


# --- the call-center screen pop -------------------------------------------------------------------

class ScreenPopView(AgencyPage, View):
    """What an agent sees the moment a call rings: who it is, or a one-click "create" (R-CUST-9)."""

    required_cap = Cap.CUSTOMERS_VIEW

    def get(self, request, number):
        try:
            pop = selectors.screen_pop(number=number)
        except ValidationError:
            return render(request, "frontend/customers/screen_pop.html", {"bad_number": number})
        customer = pop["customer"]
        context = {"pop": pop, "display": phone_display(pop["number"]),
                   "can_edit": request.user.can(Cap.CUSTOMERS_EDIT),
                   "create_url": reverse("customer_create") + "?" + urlencode({"phone": pop["number"]})}
        if customer is not None:
            privacy.access_record(user=request.user, customer=customer, what=privacy.What.CARD_VIEW,
                                  via=privacy.Via.PAGE, detail="screen pop")
            context.update(customer=customer, contacts=pop["last_contacts"], today=timezone.localdate(),
                           contact_form=contact_form(direction=Contact.Direction.INBOUND))
        return render(request, "frontend/customers/screen_pop.html", context)

