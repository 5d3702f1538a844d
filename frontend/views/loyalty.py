"""Care-automation pages (R-CARE-3 … 5, R-CAMP-4): the Care hub, occasions and the greeting log,
holiday suggestions, win-back cases, referrals, the settings, and the public unsubscribe page.

Thin views: writes go through crm.loyalty.services, reads through crm.loyalty.selectors. People
who work the pipeline or handle complaints work the cases; campaign managers (and admins) set up
the occasions and the settings.
"""
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from caravan.forms import MoneyField, errors_onto
from caravan.tenancy import current_agency, require_agency
from crm.customers.festivals import FESTIVAL_CHOICES
from crm.loyalty import selectors, services
from crm.loyalty.models import Greeting, LoyaltySettings, Occasion, Referral, Suggestion, WinBack
from crm.customers.models import Customer
from crm.customers.selectors import customer_search

from .base import AgencyPage
from .customers import staff_choices
from .periods import period_form

PER_PAGE = 50


class CarePage(AgencyPage):
    """An agency page for care automation: ``allowed(user)`` decides (several capabilities qualify)."""

    allowed = staticmethod(services.can_see_care)

    def permits(self, user) -> bool:
        return self.allowed(user)


class WorkPage(CarePage):
    allowed = staticmethod(services.can_work)


class ManagePage(CarePage):
    allowed = staticmethod(services.can_manage_occasions)


def _live_customer(raw) -> Customer | None:
    raw = str(raw or "").strip()
    return Customer.objects.filter(pk=int(raw), merged_into__isnull=True).first() if raw.isdigit() else None


def _back(request, fallback: str, **kwargs):
    """Back to the customer card when the form came from it, else to ``fallback``."""
    customer = _live_customer(request.POST.get("back_to_customer"))
    if customer is not None:
        return redirect("customer_detail", pk=customer.pk)
    return redirect(fallback, **kwargs)


# --- the hub --------------------------------------------------------------------------------------

class CareHomeView(CarePage, View):
    def get(self, request):
        return render(request, "frontend/loyalty/home.html", selectors.hub_context(user=request.user))


# --- occasions ------------------------------------------------------------------------------------

class OccasionForm(forms.ModelForm):
    """Field types and labels; the rules are in ``services.occasion_save``."""

    class Meta:
        model = Occasion
        fields = ["name", "kind", "festival", "month", "day", "days_before", "send_email", "make_task", "active",
                  "subject_zh", "body_zh", "subject_en", "body_en"]
        widgets = {"body_zh": forms.Textarea(attrs={"rows": 6}), "body_en": forms.Textarea(attrs={"rows": 6}),
                   "subject_zh": forms.TextInput(attrs={"size": 60}), "subject_en": forms.TextInput(attrs={"size": 60})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["festival"].choices = [("", "—")] + list(FESTIVAL_CHOICES)
        self.fields["month"].help_text = _("For a fixed day of the year only.")

    def _post_clean(self):
        """No model validation here: ``services.occasion_save`` reports each error on its field."""


class OccasionListView(CarePage, View):
    def get(self, request):
        return render(request, "frontend/loyalty/occasions.html", {
            "occasions": selectors.occasion_list(), "can_manage": services.can_manage_occasions(request.user),
            "fields": services.PERSONAL_FIELDS})


class OccasionFormView(ManagePage, View):
    """Create (``/care/occasions/new/``) or change (``/care/occasions/<id>/``) an occasion, with a preview."""

    template = "frontend/loyalty/occasion_form.html"

    def _render(self, request, form, occasion, status=200):
        previews = []
        if occasion is not None and occasion.pk:
            for code, label in (("zh-hans", _("Chinese")), ("en", _("English"))):
                subject, body = services.occasion_preview(occasion=occasion, language=code, owner=request.user)
                if subject:
                    previews.append({"language": label, "subject": subject, "body": body})
        return render(request, self.template, {"form": form, "occasion": occasion, "previews": previews,
                                               "fields": services.PERSONAL_FIELDS}, status=status)

    def get(self, request, pk=None):
        occasion = get_object_or_404(Occasion, pk=pk) if pk else None
        return self._render(request, OccasionForm(instance=occasion), occasion)

    def post(self, request, pk=None):
        occasion = get_object_or_404(Occasion, pk=pk) if pk else None
        form = OccasionForm(request.POST, instance=occasion)
        if form.is_valid():
            with errors_onto(form):
                occasion = services.occasion_save(actor=request.user, occasion=occasion, **form.cleaned_data)
                messages.success(request, _("Occasion saved."))
                return redirect("care_occasion_edit", pk=occasion.pk)
        return self._render(request, form, occasion, status=400)


# --- the greeting log -----------------------------------------------------------------------------

PeriodForm = period_form(selectors.default_period)


class GreetingLogView(CarePage, View):
    def get(self, request):
        form = PeriodForm(request.GET or None)
        date_from, date_to = form.period()
        occasion = Occasion.objects.filter(pk=request.GET["occasion"]).first() \
            if request.GET.get("occasion", "").isdigit() else None
        channel = request.GET.get("channel", "")
        log = selectors.greeting_log(occasion=occasion, channel=channel, date_from=date_from, date_to=date_to)
        page = Paginator(log, PER_PAGE).get_page(request.GET.get("page"))
        query = {k: v for k, v in request.GET.items() if k != "page" and v}
        return render(request, "frontend/loyalty/greetings.html", {
            "form": form, "page": page, "counts": selectors.greeting_counts(log), "occasions": Occasion.objects.all(),
            "occasion": occasion, "channel": channel, "channels": Greeting.Channel.choices,
            "filter_query": urlencode(query)}, status=400 if form.errors else 200)


# --- holiday suggestions --------------------------------------------------------------------------

class SuggestionListView(WorkPage, View):
    def get(self, request):
        status = request.GET.get("status", Suggestion.Status.OPEN)
        festival, owner = request.GET.get("festival", ""), request.GET.get("owner", "")
        qs = selectors.suggestion_list(user=request.user, status=status, festival=festival, owner=owner)
        page = Paginator(qs, PER_PAGE).get_page(request.GET.get("page"))
        return render(request, "frontend/loyalty/suggestions.html", {
            "page": page, "status": status, "festival": festival, "owner": owner,
            "statuses": Suggestion.Status.choices, "festivals": FESTIVAL_CHOICES, "staff": staff_choices(),
            "days_before": LoyaltySettings.load().suggestion_days_before,
            "filter_query": urlencode({k: v for k, v in (("status", status), ("festival", festival), ("owner", owner)) if v})})


class SuggestionActionView(WorkPage, View):
    """POST ``dismiss`` or ``lead`` (with an optional destination)."""

    def post(self, request, pk, verb):
        suggestion = get_object_or_404(Suggestion.objects.filter(customer__merged_into__isnull=True), pk=pk)
        try:
            if verb == "dismiss":
                services.suggestion_dismiss(actor=request.user, suggestion=suggestion)
                messages.success(request, _("Suggestion dismissed."))
            elif verb == "lead":
                opportunity = services.suggestion_to_lead(actor=request.user, suggestion=suggestion,
                                                          destination=request.POST.get("destination", ""))
                messages.success(request, _("Lead created: %(title)s") % {"title": opportunity.title})
                return redirect("opportunity_detail", pk=opportunity.pk)
            else:
                raise Http404
        except ValidationError as exc:
            for error in exc.messages:
                messages.error(request, error)
        return _back(request, "care_suggestions")


# --- win-back -------------------------------------------------------------------------------------

class WinBackListView(WorkPage, View):
    FILTERS = ("status", "why", "reason", "owner")

    def get(self, request):
        filters = {name: request.GET.get(name, "") for name in self.FILTERS}
        if "status" not in request.GET:
            filters["status"] = "active"
        qs = selectors.win_back_list(user=request.user, **filters)
        page = Paginator(qs, PER_PAGE).get_page(request.GET.get("page"))
        return render(request, "frontend/loyalty/win_back_list.html", {
            "page": page, "filters": filters, "summary": selectors.win_back_summary(),
            "statuses": WinBack.Status.choices, "whys": WinBack.Why.choices, "reasons": WinBack.Reason.choices,
            "staff": staff_choices(), "rules": LoyaltySettings.load(), "currency": require_agency().currency,
            "filter_query": urlencode({k: v for k, v in filters.items() if v})})


class ReasonForm(forms.Form):
    reason = forms.ChoiceField(label=gettext_lazy("Reason for leaving"), choices=[("", "—")] + WinBack.Reason.choices,
                               required=False)
    note = forms.CharField(label=gettext_lazy("What the customer said"), required=False,
                           widget=forms.Textarea(attrs={"rows": 3}))


class OfferForm(forms.Form):
    offer = forms.CharField(label=gettext_lazy("Offer"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
                            help_text=gettext_lazy("E.g. 10 percent off their next family trip, a free airport transfer."))
    value = MoneyField(label=gettext_lazy("Value of the offer"), required=False, min_value=0)


class LoseForm(forms.Form):
    note = forms.CharField(label=gettext_lazy("Note"), required=False, max_length=500)


class WinBackDetailView(WorkPage, View):
    template = "frontend/loyalty/win_back_detail.html"
    FORMS = {"reason": ReasonForm, "offer": OfferForm, "lose": LoseForm}

    @staticmethod
    def _case(pk) -> WinBack:
        return get_object_or_404(WinBack.objects.filter(customer__merged_into__isnull=True).select_related(
            "customer__owner", "won_trip", "offered_by", "closed_by", "reason_recorded_by", "task"), pk=pk)

    def _render(self, request, case, status=200, **bound):
        forms_ = {"reason_form": ReasonForm(initial={"reason": case.reason, "note": case.reason_note}),
                  "offer_form": OfferForm(initial={"offer": case.offer, "value": case.offer_value}),
                  "lose_form": LoseForm()}
        forms_.update({f"{name}_form": form for name, form in bound.items()})
        trips = case.customer.trips.filter(status__in=["confirmed", "completed"]).order_by("-depart_on")[:5]
        return render(request, self.template, {"case": case, "trips": trips, "currency": require_agency().currency,
                                               **forms_}, status=status)

    def get(self, request, pk, verb=None):  # GET on an action URL shows the case
        return self._render(request, self._case(pk))

    def post(self, request, pk, verb=None):
        case = self._case(pk)
        form_class = self.FORMS.get(verb)
        if form_class is None:
            raise Http404
        form = form_class(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            with errors_onto(form):
                if verb == "reason":
                    services.win_back_record_reason(actor=request.user, case=case, reason=data["reason"], note=data["note"])
                    messages.success(request, _("Reason recorded."))
                elif verb == "offer":
                    services.win_back_offer(actor=request.user, case=case, offer=data["offer"], value=data["value"])
                    messages.success(request, _("Offer recorded."))
                else:
                    services.win_back_lose(actor=request.user, case=case, note=data["note"])
                    messages.success(request, _("Case closed as lost."))
                return redirect("care_win_back", pk=case.pk)
        case.refresh_from_db()
        return self._render(request, case, status=400, **{verb: form})


# --- referrals ------------------------------------------------------------------------------------

class ReferralForm(forms.Form):
    referrer = forms.IntegerField(label=gettext_lazy("Referred by"), required=False,
                                  error_messages={"invalid": gettext_lazy("Search and choose a customer.")})
    referred = forms.IntegerField(label=gettext_lazy("Referred customer"), required=False,
                                  error_messages={"invalid": gettext_lazy("Search and choose a customer.")})
    note = forms.CharField(label=gettext_lazy("Note"), required=False, max_length=300)


class RewardForm(forms.Form):
    description = forms.CharField(label=gettext_lazy("Reward"), required=False, max_length=300,
                                  help_text=gettext_lazy("E.g. a 500 yuan travel voucher, a hotel upgrade."))
    value = MoneyField(label=gettext_lazy("Value"), required=False, min_value=0)


class ReferralListView(WorkPage, View):
    template = "frontend/loyalty/referrals.html"

    def context(self, request, form=None) -> dict:
        status = request.GET.get("status", "")
        page = Paginator(selectors.referral_list(status=status), PER_PAGE).get_page(request.GET.get("page"))
        return {"page": page, "status": status, "statuses": Referral.Status.choices,
                "top": selectors.top_referrers(limit=10), "counts": selectors.referral_counts(),
                "pending_rewards": selectors.referral_list(status=Referral.Status.QUALIFIED)[:50],
                "form": form or ReferralForm(), "reward_form": RewardForm(), "currency": require_agency().currency,
                "filter_query": urlencode({"status": status} if status else {})}

    def get(self, request):
        return render(request, self.template, self.context(request))


class ReferralCreateView(WorkPage, View):
    """POST from the referrals page or a customer card (``back_to_customer``)."""

    def post(self, request):
        form = ReferralForm(request.POST)
        if form.is_valid():
            referrer = _live_customer(form.cleaned_data["referrer"])
            referred = _live_customer(form.cleaned_data["referred"])
            with errors_onto(form):
                services.referral_record(actor=request.user, referrer=referrer, referred=referred,
                                         note=form.cleaned_data["note"])
                messages.success(request, _("Referral recorded."))
                return _back(request, "care_referrals")
        card = _live_customer(request.POST.get("back_to_customer"))
        if card is not None:  # back to the card, with the errors as messages
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
            return redirect("customer_detail", pk=card.pk)
        return render(request, ReferralListView.template, ReferralListView().context(request, form), status=400)


class ReferralRewardView(WorkPage, View):
    def post(self, request, pk):
        referral = get_object_or_404(selectors.referral_list(), pk=pk)
        form = RewardForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                services.referral_reward(actor=request.user, referral=referral,
                                         description=form.cleaned_data["description"], value=form.cleaned_data["value"])
                messages.success(request, _("Reward recorded."))
                return _back(request, "care_referrals")
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return _back(request, "care_referrals")


class CustomerChoicesView(WorkPage, View):
    """Search-as-you-type (name, phone, e-mail, or a customer number) for the referral forms."""

    def get(self, request):
        query = request.GET.get("q", "").strip()
        found = []
        if query.isdigit() and (exact := _live_customer(query)) is not None:
            found.append(exact)
        if query:
            found += [c for c in customer_search(query=query, limit=10) if c.pk not in {f.pk for f in found}]
        field = request.GET.get("field", "referred")
        return render(request, "frontend/loyalty/_customer_choices.html",
                      {"found": found[:10], "query": query, "field": field if field in ("referrer", "referred") else "referred"})


# --- settings -------------------------------------------------------------------------------------

class SettingsForm(forms.ModelForm):
    class Meta:
        model = LoyaltySettings
        fields = ["greeting_hour", "suggestion_days_before", "dormant_days", "dormant_min_trips", "win_back_declining"]

    def _post_clean(self):
        """Checked by ``services.settings_update``."""


class CareSettingsView(ManagePage, View):
    template = "frontend/loyalty/settings.html"

    def get(self, request):
        rules = LoyaltySettings.load()
        return render(request, self.template, {"form": SettingsForm(instance=rules), "rules": rules,
                                               "timezone": require_agency().time_zone})

    def post(self, request):
        rules = LoyaltySettings.load()
        form = SettingsForm(request.POST, instance=rules)
        if form.is_valid():
            with errors_onto(form):
                services.settings_update(actor=request.user, **form.cleaned_data)
                messages.success(request, _("Settings saved."))
                return redirect("care_settings")
        return render(request, self.template, {"form": form, "rules": rules, "timezone": require_agency().time_zone},
                      status=400)


# --- public: unsubscribe --------------------------------------------------------------------------

@method_decorator(csrf_exempt, name="dispatch")
class UnsubscribeView(View):
    """Public (the link at the foot of a greeting e-mail). GET asks, POST unsubscribes; mail
    programs' one-click unsubscribe POSTs without a form, so no CSRF token is asked for: the
    signed token (salted with the agency's schema) is the authority."""

    template = "frontend/loyalty/unsubscribe.html"

    def _customer(self, token):
        if current_agency() is None:
            raise Http404
        return services.customer_from_unsubscribe_token(token)

    def get(self, request, token):
        customer = self._customer(token)
        if customer is None:
            return render(request, self.template, {"invalid": True}, status=404)
        return render(request, self.template, {"customer": customer, "agency": require_agency()})

    def post(self, request, token):
        if self._customer(token) is None:
            return render(request, self.template, {"invalid": True}, status=404)
        services.unsubscribe_by_token(token)
        return render(request, self.template, {"done": True, "agency": require_agency()})
