"""Customer 360, part 2: the card's lazily loaded sections (documents, profile, company links) and
the merge and handover pages. The rules live in crm.customers.services / crm.customers.selectors.

Sections answer htmx with the re-rendered section (also when a form has errors: htmx does not
swap 4xx responses); opened directly, they render the partial alone and answer form errors with 400.
"""
import re

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.utils.translation import ngettext
from django.views import View

from accounts.models import User
from accounts.roles import Cap
from caravan.forms import MoneyField, errors_onto
from crm.customers import selectors, services
from crm.customers.models import ChangeLog, Customer, Handover, LoyaltyMembership, Preferences, TravelDocument

from .base import AgencyPage

PAGE = ChangeLog.Via.PAGE
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")

INTEREST_LABELS = {
    "leisure": gettext_lazy("Leisure"), "sightseeing": gettext_lazy("Sightseeing"),
    "adventure": gettext_lazy("Adventure"), "culture": gettext_lazy("Culture and history"),
    "food": gettext_lazy("Food and wine"), "shopping": gettext_lazy("Shopping"),
    "family": gettext_lazy("Family trips"), "golf": gettext_lazy("Golf"), "skiing": gettext_lazy("Skiing"),
    "cruise": gettext_lazy("Cruises"), "business": gettext_lazy("Business travel"),
}
INTEREST_CHOICES = [(key, INTEREST_LABELS.get(key, key)) for key in Preferences.INTERESTS]


def _customer(pk) -> Customer:
    """A customer of the active agency by id (from the URL or a form), else 404."""
    if not str(pk).isdigit():
        raise Http404
    return get_object_or_404(Customer, pk=pk)


def _words(text: str, separators: str) -> list[str]:
    return [w.strip() for w in re.split(separators, text or "") if w.strip()]


def _verbose(model, name: str):
    return capfirst(model._meta.get_field(name).verbose_name)


def _optional(choices, empty=gettext_lazy("No preference")):
    return [("", empty), *choices]


# --- forms ------------------------------------------------------------------------------------

class SectionForm(forms.Form):
    """Several forms share the customer card: their HTML ids start with ``id_prefix`` to stay unique."""

    id_prefix = "id"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", f"{self.id_prefix}_%s")
        super().__init__(*args, **kwargs)


class NumberInput(forms.TextInput):
    """A document number is never sent back to the browser, not even the one just typed."""

    def format_value(self, value):
        return None


class DocumentForm(SectionForm):
    id_prefix = "doc"

    kind = forms.ChoiceField(label=_verbose(TravelDocument, "kind"), choices=TravelDocument.Kind.choices)
    issuing_country = forms.CharField(label=_verbose(TravelDocument, "issuing_country"), initial="CN",
                                      widget=forms.TextInput(attrs={"size": 2, "placeholder": "CN"}))
    number = forms.CharField(label=_verbose(TravelDocument, "masked"), widget=NumberInput(attrs={"autocomplete": "off"}))
    issued_on = forms.DateField(label=_verbose(TravelDocument, "issued_on"), required=False, widget=DATE)
    expires_on = forms.DateField(label=_verbose(TravelDocument, "expires_on"), required=False, widget=DATE)
    valid_for = forms.CharField(label=_verbose(TravelDocument, "valid_for"), required=False,
                                help_text=gettext_lazy("For visas: the two-letter code of the country, e.g. JP."),
                                widget=forms.TextInput(attrs={"size": 2}))


class PreferencesForm(SectionForm):
    id_prefix = "pref"

    airlines = forms.CharField(label=_verbose(Preferences, "airlines"), required=False,
                               help_text=gettext_lazy("Two-character codes separated by commas, e.g. CA, MU."))
    seat = forms.ChoiceField(label=_verbose(Preferences, "seat"), choices=_optional(Preferences.Seat.choices), required=False)
    meal = forms.ChoiceField(label=_verbose(Preferences, "meal"), choices=_optional(Preferences.Meal.choices), required=False)
    cabin = forms.ChoiceField(label=_verbose(Preferences, "cabin"), choices=_optional(Preferences.Cabin.choices), required=False)
    aircraft_size = forms.ChoiceField(label=_verbose(Preferences, "aircraft_size"),
                                      choices=_optional(Preferences.AircraftSize.choices), required=False)
    hotel_chains = forms.CharField(label=_verbose(Preferences, "hotel_chains"), required=False,
                                   help_text=gettext_lazy("Separated by commas, e.g. Marriott, Hilton."))
    room_type = forms.CharField(label=_verbose(Preferences, "room_type"), required=False, max_length=40)
    interests = forms.MultipleChoiceField(label=_verbose(Preferences, "interests"), choices=INTEREST_CHOICES,
                                          required=False, widget=forms.CheckboxSelectMultiple)
    price_sensitivity = forms.ChoiceField(label=_verbose(Preferences, "price_sensitivity"),
                                          choices=_optional(Preferences.Sensitivity.choices), required=False)
    budget_per_trip = MoneyField(label=_verbose(Preferences, "budget_per_trip"), required=False, min_value=0)

    def clean_airlines(self):
        return _words(self.cleaned_data["airlines"], r"[,，、;；\s]+")

    def clean_hotel_chains(self):
        return _words(self.cleaned_data["hotel_chains"], r"[,，、;；]+")

    @classmethod
    def for_preferences(cls, prefs: Preferences | None) -> "PreferencesForm":
        if prefs is None:
            return cls()
        initial = {name: getattr(prefs, name) for name in cls.base_fields}
        initial["airlines"] = ", ".join(prefs.airlines)
        initial["hotel_chains"] = ", ".join(prefs.hotel_chains)
        return cls(initial=initial)


class LoyaltyForm(SectionForm):
    id_prefix = "loyalty"

    programme = forms.CharField(label=_verbose(LoyaltyMembership, "programme"), max_length=60,
                                help_text=LoyaltyMembership._meta.get_field("programme").help_text)
    number = forms.CharField(label=_verbose(LoyaltyMembership, "number"), max_length=40)
    tier = forms.CharField(label=_verbose(LoyaltyMembership, "tier"), max_length=30, required=False)


class FamilyDateForm(SectionForm):
    id_prefix = "family"

    label = forms.CharField(label=gettext_lazy("Occasion"), max_length=60,
                            help_text=gettext_lazy("E.g. wife's birthday, wedding anniversary."))
    date = forms.DateField(label=gettext_lazy("Date"), widget=DATE)


class LinkPersonForm(SectionForm):
    """Link a person to a company: one found on file (``person``) or a new one (name, phone, e-mail)."""

    id_prefix = "link"

    person = forms.ModelChoiceField(queryset=Customer.objects.filter(kind=Customer.Kind.PERSON, merged_into__isnull=True),
                                    required=False, widget=forms.HiddenInput)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200, required=False)
    phones = forms.CharField(label=gettext_lazy("Phone"), required=False)
    emails = forms.CharField(label=gettext_lazy("E-mail"), required=False)
    job_grade = forms.CharField(label=gettext_lazy("Job grade"), max_length=20, required=False)
    department = forms.CharField(label=gettext_lazy("Department"), max_length=100, required=False)
    title = forms.CharField(label=gettext_lazy("Job title"), max_length=100, required=False)
    is_traveler = forms.BooleanField(label=gettext_lazy("Travels"), required=False, initial=True)
    is_booker = forms.BooleanField(label=gettext_lazy("Books for others"), required=False)
    reports_to = forms.ModelChoiceField(label=gettext_lazy("Reports to"), queryset=Customer.objects.none(),
                                        required=False,
                                        help_text=gettext_lazy("Their manager, who approves out-of-policy bookings."))

    def __init__(self, *args, company: Customer | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if company is not None:  # a manager is someone at the same company
            self.fields["reports_to"].queryset = Customer.objects.filter(
                employments__company=company, employments__active=True).order_by("name")

    def clean(self):
        data = super().clean()
        if data.get("person") and data.get("reports_to") and data["person"] == data["reports_to"]:
            self.add_error("reports_to", _("Someone cannot report to themselves."))
        if data.get("person") and data.get("name"):
            raise ValidationError(_("Either choose a person on file or enter a new one, not both."))
        if not data.get("person") and not data.get("name") and "person" not in self.errors:
            raise ValidationError(_("Choose a person on file or enter the new person's name."))
        return data

    def link_values(self) -> dict:
        return {k: self.cleaned_data[k] for k in ("job_grade", "department", "title", "is_traveler", "is_booker",
                                                  "reports_to")}


class StaffChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, user):
        return ngettext("%(name)s (%(count)d customer)", "%(name)s (%(count)d customers)", user.owned) % {
            "name": user, "count": user.owned}


def _staff_with_counts():
    """Staff, each with ``owned``: how many live customers they are account manager of."""
    return (User.objects.annotate(owned=Count("customers", filter=Q(customers__merged_into__isnull=True)))
            .order_by("full_name", "email"))


class HandoverForm(forms.Form):
    from_user = StaffChoiceField(label=gettext_lazy("Colleague leaving"), empty_label=gettext_lazy("Choose a colleague"),
                                 queryset=_staff_with_counts())
    to_users = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Hand over to"), queryset=User.objects.filter(is_active=True),
        help_text=gettext_lazy("Customers are shared among them in turn."),
        widget=forms.SelectMultiple(attrs={"size": 6}))


# --- the card's sections ------------------------------------------------------------------------

class CustomerSection(AgencyPage, View):
    """One section of the customer card. Subclasses give the template, the context and the forms."""

    template_name = ""
    section_url = ""

    def get(self, request, pk):
        return self.show(_customer(pk))

    def context(self, customer: Customer, **extra) -> dict:
        raise NotImplementedError

    def show(self, customer, status=200, **extra):
        return render(self.request, self.template_name, self.context(customer, **extra), status=status)

    def saved(self, customer):
        """After a change: the fresh section for htmx, a redirect to it otherwise (no resubmission)."""
        if self.request.htmx:
            return self.show(customer)
        return redirect(self.section_url, pk=customer.pk)

    def invalid(self, customer, **forms_and_errors):
        return self.show(customer, status=200 if self.request.htmx else 400, **forms_and_errors)

    def require(self, cap: str) -> None:
        if not self.request.user.can(cap):
            raise PermissionDenied


class DocumentsSection(CustomerSection):
    required_cap = Cap.DOCUMENTS_VIEW
    template_name = "frontend/customers/_documents.html"
    section_url = "customer_documents"

    def context(self, customer, add_form=None, duplicate=None):
        user = self.request.user
        return {"customer": customer,
                "documents": [(d, services.document_expiry(d)) for d in customer.documents.all()],
                "can_reveal": user.can(Cap.DOCUMENTS_REVEAL), "can_add": user.can(Cap.CUSTOMERS_EDIT),
                "add_form": add_form or DocumentForm(), "duplicate": duplicate}


class DocumentAddView(DocumentsSection):
    http_method_names = ["post"]

    def post(self, request, pk):
        self.require(Cap.CUSTOMERS_EDIT)
        customer = _customer(pk)
        form = DocumentForm(request.POST)
        duplicate = None
        if form.is_valid():
            with errors_onto(form):
                try:
                    services.document_add(actor=request.user, customer=customer, via=PAGE, **form.cleaned_data)
                except services.DuplicateCustomer as exc:
                    duplicate = {"holder": exc.matches[0][0] if exc.matches else None}
                else:
                    return self.saved(customer)
        return self.invalid(customer, add_form=form, duplicate=duplicate)


class DocumentRevealView(AgencyPage, View):
    """The full number in place of the mask; crm.customers.services.document_reveal records who saw it."""

    required_cap = Cap.DOCUMENTS_REVEAL

    def post(self, request, pk):
        document = get_object_or_404(TravelDocument, pk=pk)
        number = services.document_reveal(actor=request.user, document=document, via=PAGE)
        response = render(request, "frontend/customers/_detail_document_number.html",
                          {"document": document, "number": number})
        response["Cache-Control"] = "no-store"
        return response


class ProfileSection(CustomerSection):
    required_cap = Cap.CUSTOMERS_VIEW
    template_name = "frontend/customers/_profile_sections.html"
    section_url = "customer_profile_sections"

    def context(self, customer, prefs_form=None, loyalty_form=None, family_form=None):
        prefs = Preferences.objects.filter(customer=customer).first()
        return {"customer": customer, "prefs": prefs,
                "interests": [INTEREST_LABELS.get(i, i) for i in prefs.interests] if prefs else [],
                "loyalty": customer.loyalty.order_by("programme"), "family_dates": customer.family_dates.all(),
                "can_edit": self.request.user.can(Cap.CUSTOMERS_EDIT),
                "prefs_form": prefs_form or PreferencesForm.for_preferences(prefs),
                "loyalty_form": loyalty_form or LoyaltyForm(), "family_form": family_form or FamilyDateForm()}


class ProfileFormView(ProfileSection):
    """Saves one of the profile section's forms, then shows the section again."""

    required_cap = Cap.CUSTOMERS_EDIT
    http_method_names = ["post"]
    form_class: type[forms.Form]
    form_name = ""

    def write(self, customer, data):
        raise NotImplementedError

    def post(self, request, pk):
        customer = _customer(pk)
        form = self.form_class(request.POST)
        if form.is_valid():
            with errors_onto(form):
                with transaction.atomic():
                    self.write(customer, form.cleaned_data)
                return self.saved(customer)
        return self.invalid(customer, **{self.form_name: form})


class PreferencesEditView(ProfileFormView):
    form_class, form_name = PreferencesForm, "prefs_form"

    def write(self, customer, data):
        services.customer_preferences_set(actor=self.request.user, customer=customer, **data)


class LoyaltyAddView(ProfileFormView):
    form_class, form_name = LoyaltyForm, "loyalty_form"

    def write(self, customer, data):
        services.loyalty_set(actor=self.request.user, customer=customer, **data)


class FamilyDateAddView(ProfileFormView):
    form_class, form_name = FamilyDateForm, "family_form"

    def write(self, customer, data):
        services.family_date_add(actor=self.request.user, customer=customer, **data)


class CompanySection(CustomerSection):
    """A person's corporate accounts, or a company's people with the form to link one."""

    required_cap = Cap.CUSTOMERS_VIEW
    template_name = "frontend/customers/_company_links.html"
    section_url = "customer_company_links"

    def context(self, customer, link_form=None, duplicates=()):
        is_company = customer.kind == Customer.Kind.COMPANY
        if is_company:
            links = customer.staff_links.select_related("person", "reports_to").order_by("person__name")
        else:
            links = customer.employments.select_related("company").order_by("company__name")
        form = link_form or LinkPersonForm(company=customer if is_company else None)
        chosen = getattr(form, "cleaned_data", {}).get("person")
        return {"customer": customer, "is_company": is_company, "links": links, "link_form": form,
                "chosen": chosen, "duplicates": duplicates,
                "can_edit": is_company and self.request.user.can(Cap.CUSTOMERS_EDIT)}


class PersonSearchView(AgencyPage, View):
    """Search-as-you-type for the link form: persons only, each a choice to link to the company."""

    required_cap = Cap.CUSTOMERS_VIEW

    def get(self, request, pk):
        company = _customer(pk)
        query = request.GET.get("q", "").strip()
        people = [c for c in selectors.customer_search(query=query, limit=20) if c.kind == Customer.Kind.PERSON][:10]
        linked = set(company.staff_links.values_list("person_id", flat=True))
        return render(request, "frontend/customers/_detail_person_choices.html",
                      {"people": people, "linked": linked, "query": query})


class EmploymentAddView(CompanySection):
    required_cap = Cap.CUSTOMERS_EDIT
    http_method_names = ["post"]

    def post(self, request, pk):
        company = _customer(pk)
        form = LinkPersonForm(request.POST, company=company)
        duplicates = []
        if form.is_valid():
            data = form.cleaned_data
            with errors_onto(form):
                try:
                    with transaction.atomic():
                        person = data["person"] or services.customer_create(
                            actor=request.user, via=PAGE, kind=Customer.Kind.PERSON, name=data["name"],
                            phones=[data["phones"]], emails=[data["emails"]])
                        services.employment_set(actor=request.user, company=company, person=person,
                                                **form.link_values())
                except services.DuplicateCustomer as exc:
                    # Offer the people on file instead; the new-person fields start empty again.
                    duplicates = exc.matches
                    form = LinkPersonForm(initial=form.link_values(), company=company)
                else:
                    return self.saved(company)
        return self.invalid(company, link_form=form, duplicates=duplicates)


# --- merge and handover pages ---------------------------------------------------------------------

class CustomerMergeView(AgencyPage, View):
    """Join a duplicate into this customer (or this one into it): pick, compare, choose, confirm."""

    required_cap = Cap.CUSTOMERS_MANAGE

    def get(self, request, pk):
        customer = _customer(pk)
        query = request.GET.get("q", "").strip()
        candidates = [c for c in selectors.customer_search(query=query, limit=11) if c.pk != customer.pk][:10]
        if request.htmx and "q" in request.GET:
            return render(request, "frontend/customers/_detail_merge_candidates.html",
                          {"customer": customer, "candidates": candidates, "query": query})
        other = _customer(request.GET["other"]) if request.GET.get("other") else None
        return self.page(customer, other, query=query, candidates=candidates)

    def post(self, request, pk):
        customer = _customer(pk)
        other = _customer(request.POST.get("other", ""))
        keep_id = request.POST.get("keep")
        if keep_id not in (str(customer.pk), str(other.pk)):
            return self.page(customer, other, error=_("Choose which record to keep."), status=400)
        keep, drop = (customer, other) if keep_id == str(customer.pk) else (other, customer)
        try:
            services.customer_merge(actor=request.user, keep=keep, drop=drop, via=ChangeLog.Via.MERGE)
        except ValidationError as exc:
            return self.page(customer, other, error=" ".join(exc.messages), status=400)
        messages.success(request, _("%(drop)s was merged into %(keep)s.") % {"drop": drop.name, "keep": keep.name})
        return redirect("customer_detail", pk=keep.pk)

    def page(self, customer, other, *, status=200, **extra):
        sides = []
        if other is not None:
            found = (Customer.objects.filter(pk__in=[customer.pk, other.pk]).select_related("owner", "merged_into")
                     .prefetch_related("phones", "emails", "documents").annotate(contacts_count=Count("contacts")))
            by_pk = {c.pk: c for c in found}
            sides = [by_pk[customer.pk], by_pk[other.pk]]
        return render(self.request, "frontend/customers/merge.html", {
            "customer": customer, "other": other, "sides": sides,
            "suggestions": selectors.similar_customers(name=customer.name, exclude=customer),
            "show_documents": self.request.user.can(Cap.DOCUMENTS_VIEW), **extra}, status=status)


class CustomerHandoverView(AgencyPage, View):
    """A leaving colleague's customers shared among others in one step, with the recent handovers."""

    required_cap = Cap.CUSTOMERS_MANAGE

    def get(self, request):
        preview = self.preview(request.GET.get("from_user", ""))
        if request.htmx:
            return render(request, "frontend/customers/_detail_handover_preview.html", {"preview": preview})
        initial = {"from_user": request.GET.get("from_user"), "to_users": request.GET.getlist("to_users")}
        return self.page(HandoverForm(initial=initial), preview)

    def post(self, request):
        form = HandoverForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                handover = services.customers_handover(actor=request.user, from_user=form.cleaned_data["from_user"],
                                                       to_users=list(form.cleaned_data["to_users"]))
                messages.success(request, self.summary(handover))
                return redirect("customer_handover")
        return self.page(form, self.preview(request.POST.get("from_user", "")), status=400)

    @staticmethod
    def preview(from_id: str) -> dict | None:
        """How many customers the chosen colleague owns (shown before confirming)."""
        user = _staff_with_counts().filter(pk=from_id).first() if from_id.isdigit() else None
        return {"user": user, "count": user.owned} if user else None

    @staticmethod
    def summary(handover: Handover) -> str:
        names = {str(u.pk): str(u) for u in User.objects.filter(pk__in=handover.summary)}
        total = sum(handover.summary.values())
        shares = ", ".join(_("%(name)s got %(count)d") % {"name": names[k], "count": n} for k, n in handover.summary.items())
        return ngettext("%(count)d customer handed over: %(shares)s.", "%(count)d customers handed over: %(shares)s.",
                        total) % {"count": total, "shares": shares}

    def page(self, form, preview, status=200):
        recent = list(Handover.objects.select_related("from_user", "actor").order_by("-at")[:20])
        names = {str(u.pk): str(u) for u in User.objects.filter(pk__in={k for h in recent for k in h.summary})}
        history = [(h, [(names.get(k, "?"), n) for k, n in h.summary.items()]) for h in recent]
        return render(self.request, "frontend/customers/handover.html",
                      {"form": form, "preview": preview, "history": history}, status=status)
