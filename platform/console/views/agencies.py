"""Operator console pages on the platform domain (thin: forms in, services do the work)."""
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import UserPassesTestMixin
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext_lazy
from django.views import View

from accounts import signin, tokens
from accounts.models import ApiToken
from billing import services as billing
from billing.models import Plan
from caravan import formatting
from caravan.forms import errors_onto
from caravan.lazy import lazy_module
from caravan.texts import lazy_format
from tenants import services
from tenants.models import Agency, AgencyEvent
from tenants.portability import services as portability
from tenants.portability.models import AgencyExport, AgencyRestore

stripe = lazy_module("stripe")  # about 30 MB: imported by the first Stripe call, not by every web worker


class OperatorRequired(UserPassesTestMixin):
    def test_func(self):
        user = self.request.user
        return user.is_authenticated and user.is_active and user.is_operator


class OnboardForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Agency name"), max_length=200)
    slug = forms.CharField(label=gettext_lazy("Subdomain"), max_length=30,
                           help_text=gettext_lazy("Lowercase letters, digits and hyphens; becomes <slug>.<platform domain>."))
    plan = forms.ChoiceField(label=gettext_lazy("Plan"), choices=())
    admin_email = forms.EmailField(label=gettext_lazy("First admin's e-mail"))
    admin_name = forms.CharField(label=gettext_lazy("First admin's name"), max_length=150, required=False)
    language = forms.ChoiceField(label=gettext_lazy("Default language"),
                                 choices=[("zh-hans", "简体中文"), ("en", "English")])


    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].choices = list(services.offered_plans().items())


class AgencyListView(OperatorRequired, View):
    def get(self, request):
        agencies = Agency.objects.agencies().prefetch_related("domains")
        query = request.GET.get("q", "").strip()
        if query:
            agencies = agencies.filter(Q(name__icontains=query) | Q(slug__icontains=query))
        status = request.GET.get("status")
        if status in Agency.Status.values:
            agencies = agencies.filter(status=status)
        return render(request, "console/agency_list.html", {
            "agencies": agencies, "query": query, "status": status, "statuses": Agency.Status.choices,
        })


class OnboardView(OperatorRequired, View):
    def get(self, request):
        return render(request, "console/onboard.html", {"form": OnboardForm()})

    def post(self, request):
        form = OnboardForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                result = services.agency_onboard(actor=request.user.email, **form.cleaned_data)
                messages.success(request, _("Agency %(name)s is ready.") % {"name": result.agency.name})
                return render(request, "console/onboarded.html", {"result": result})
        return render(request, "console/onboard.html", {"form": form}, status=400)


class AgencyDetailView(OperatorRequired, View):
    def get(self, request, slug):
        agency = get_object_or_404(Agency.objects.agencies(), slug=slug)
        events = AgencyEvent.objects.unscoped().filter(agency=agency)[:50]
        account = billing.account_for(agency)
        try:
            credits = billing.credits_pending(agency)
        except (ValidationError, stripe.StripeError):  # billing not configured, or Stripe unreachable
            credits = None
        exports = [(e, portability.progress(e)) for e in AgencyExport.objects.unscoped().filter(agency=agency)[:5]]
        return render(request, "console/agency_detail.html", {
            "subject": agency, "events": events, "account": account, "mrr": billing.monthly_revenue(account),
            "credits": credits, "exports": exports, "grace_days": settings.AGENCY_DELETION_GRACE_DAYS})

    def post(self, request, slug):
        agency = get_object_or_404(Agency.objects.agencies(), slug=slug)
        action = request.POST.get("action")
        note = request.POST.get("note", "")
        try:
            if action == "suspend":
                services.agency_suspend(agency=agency, actor=request.user.email, note=note)
                messages.success(request, _("Agency suspended: staff can read but not write."))
            elif action == "reactivate":
                services.agency_reactivate(agency=agency, actor=request.user.email, note=note)
                messages.success(request, _("Agency reactivated."))
            elif action in ("comp", "uncomp"):
                billing.set_comped(agency=agency, comped=action == "comp", actor=request.user.email, note=note)
                messages.success(request, _("Free use granted: the agency is active without a subscription.")
                                 if action == "comp" else _("Free use withdrawn."))
            elif action == "extend_trial":
                try:
                    days = int(request.POST.get("days", ""))
                except ValueError:
                    raise ValidationError(_("Extend by 1 to 90 days.")) from None
                agency = billing.extend_trial(agency=agency, days=days, actor=request.user.email)
                messages.success(request, _("Trial extended to %(day)s.") % {"day": formatting.day(agency.trial_ends_at)})
            elif action == "credit":
                credit = billing.grant_credit(agency=agency, amount=request.POST.get("amount", ""),
                                              reason=request.POST.get("reason", ""), actor=request.user.email)
                messages.success(request, _("%(amount)s will come off the next invoice.")
                                 % {"amount": formatting.money(credit["amount"], credit["currency"])})
            elif action == "export":
                portability.export_request(agency=agency, actor=request.user.email, by_operator=True)
                messages.success(request, _("The export is being prepared; it appears below when ready."))
            elif action == "schedule_deletion":
                agency = portability.deletion_schedule(agency=agency, actor=request.user.email, note=note)
                messages.success(request, _("Deletion scheduled for %(day)s; the agency's admins were told and offered "
                                            "an export.") % {"day": formatting.day(agency.deletion_due_at)})
            elif action == "cancel_deletion":
                portability.deletion_cancel(agency=agency, actor=request.user.email, note=note)
                messages.success(request, _("Deletion cancelled; the agency stays suspended."))
            elif action == "delete":
                services.agency_delete(agency=agency, actor=request.user.email,
                                       confirm_slug=request.POST.get("confirm_slug", ""))
                messages.success(request, _("Agency %(name)s and all its data were deleted.") % {"name": agency.name})
                return redirect("console:agencies")
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        return redirect("console:agency", slug=agency.slug)


class PlanForm(forms.ModelForm):
    class Meta:
        model = Plan
        fields = ["code", "name", "currency", "seat_price_month", "seat_price_year", "max_seats", "max_customers",
                  "campaign_emails_month", "supplier_feeds", "api_requests_per_minute", "active"]


class BillingOverviewView(OperatorRequired, View):
    """Every agency's plan, status, seats and monthly revenue; failed payments first to the eye."""

    def get(self, request):
        return render(request, "console/billing.html", {"overview": billing.overview(),
                                                        "plans": Plan.objects.all()})


class PlanFormView(OperatorRequired, View):
    """A new plan or a change to one; saving keeps Stripe in step (a new price is a new Stripe plan)."""

    def get(self, request, pk=None):
        plan = get_object_or_404(Plan, pk=pk) if pk else None
        return render(request, "console/plan_form.html", {"form": PlanForm(instance=plan), "plan": plan})

    def post(self, request, pk=None):
        plan = get_object_or_404(Plan, pk=pk) if pk else None
        form = PlanForm(request.POST, instance=plan)
        if form.is_valid():
            with errors_onto(form):
                saved = billing.plan_save(form.save(commit=False))
                messages.success(request, _("Plan %(name)s saved and kept in step with Stripe.") % {"name": saved.name})
                return redirect("console:billing")
        return render(request, "console/plan_form.html", {"form": form, "plan": plan}, status=400)


class ExportDownloadView(OperatorRequired, View):
    """An operator downloads an agency's export (platform domain only); logged in the agency's history."""

    def get(self, request, slug, pk):
        export = get_object_or_404(AgencyExport.objects.unscoped().select_related("agency"), pk=pk, agency__slug=slug)
        try:
            path = portability.export_download(export=export, actor=request.user.email)
        except ValidationError:
            raise Http404 from None
        return FileResponse(open(path, "rb"), as_attachment=True, content_type="application/zip",
                            filename=portability.download_name(export, slug))


class RestoreForm(forms.Form):
    archive = forms.FileField(label=gettext_lazy("Export archive (.zip)"))
    slug = forms.CharField(label=gettext_lazy("Subdomain of the restored agency"), max_length=30,
                           help_text=gettext_lazy("A new slug, or the slug of a deleted agency."))
    name = forms.CharField(label=gettext_lazy("Agency name"), max_length=200, required=False,
                           help_text=gettext_lazy("Leave empty to keep the name in the archive."))
    trust_unsigned = forms.BooleanField(
        label=gettext_lazy("Trust an archive this platform did not sign"), required=False,
        help_text=gettext_lazy("Only for an archive made by another Caravan platform that you know to be unchanged."))


class RestoreView(OperatorRequired, View):
    """Restore an export into a new agency (or over a deleted one's slug), in the background."""

    def _render(self, request, form, status=200):
        jobs = [(job, portability.progress_of_restore(job)) for job in AgencyRestore.objects.all()[:20]]
        template = "console/_restores.html" if request.htmx else "console/restore.html"
        polling = any(job.status in ("queued", "running") for job, _progress in jobs)
        return render(request, template, {"form": form, "jobs": jobs, "polling": polling}, status=status)

    def get(self, request):
        return self._render(request, RestoreForm())

    def post(self, request):
        form = RestoreForm(request.POST, request.FILES)
        if form.is_valid():
            with errors_onto(form):
                portability.restore_request(upload=form.cleaned_data["archive"], slug=form.cleaned_data["slug"],
                                            name=form.cleaned_data["name"], actor=request.user.email,
                                            trust_unsigned=form.cleaned_data["trust_unsigned"])
                messages.success(request, _("The restore has started; it is listed below."))
                return redirect("console:restore")
        return self._render(request, form, status=400)


class SignInLockoutsView(OperatorRequired, View):
    """Operators' accounts and addresses whose sign-in is paused after failed attempts (public schema
    only: each agency's admins unlock their own on the Staff page)."""

    def get(self, request):
        return render(request, "console/signin_lockouts.html", {"lockouts": signin.locked_out()})

    def post(self, request):
        kind, value = request.POST.get("kind", ""), request.POST.get("value", "")
        if kind in ("account", "address") and value:
            signin.signin_unlock(kind=kind, value=value)
            messages.success(request, _("Unlocked: %(value)s can sign in again.") % {"value": value})
        return redirect("console:signin_lockouts")


class OperatorTokenForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    scopes = forms.MultipleChoiceField(label=gettext_lazy("May use"), widget=forms.CheckboxSelectMultiple,
                                       choices=[("operator:read", gettext_lazy("Operator API: read")),
                                                ("operator:write", gettext_lazy("Operator API: write"))])
    days = forms.TypedChoiceField(label=gettext_lazy("Expires after"), coerce=int, initial=30,
                                  choices=[(d, lazy_format(ngettext_lazy("%(days)s day", "%(days)s days", d), days=d))
                                           for d in tokens.EXPIRY_CHOICES])


class OperatorTokensView(OperatorRequired, View):
    """Operators' API tokens (public schema): each operator creates their own; any operator revokes any."""

    def _page(self, request, form, *, secret=None, status=200):
        live = ApiToken.objects.select_related("user").filter(revoked_at__isnull=True).order_by("user__email", "-created_at")
        return render(request, "console/tokens.html", {"form": form, "tokens": live, "secret": secret}, status=status)

    def get(self, request):
        return self._page(request, OperatorTokenForm())

    def post(self, request):
        if request.POST.get("action") == "revoke":
            token = get_object_or_404(ApiToken, pk=int(request.POST["token"]) if request.POST.get("token", "").isdigit() else 0)
            tokens.token_revoke(actor=request.user, token=token)
            messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
            return redirect("console:tokens")
        form = OperatorTokenForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                _token, secret = tokens.token_create(user=request.user, created_by=request.user, **form.cleaned_data)
                return self._page(request, OperatorTokenForm(), secret=secret, status=201)
        return self._page(request, form, status=400)
