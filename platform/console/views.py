"""Operator console pages on the platform domain (thin: forms in, services do the work)."""
from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import UserPassesTestMixin
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from caravan.forms import apply_errors
from tenants import services
from tenants.models import Agency, AgencyEvent


class OperatorRequired(UserPassesTestMixin):
    def test_func(self):
        user = self.request.user
        return user.is_authenticated and user.is_active and user.is_operator


class OnboardForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Agency name"), max_length=200)
    slug = forms.CharField(label=gettext_lazy("Subdomain"), max_length=30,
                           help_text=gettext_lazy("Lowercase letters, digits and hyphens; becomes <slug>.<platform domain>."))
    plan = forms.ChoiceField(label=gettext_lazy("Plan"), choices=Agency.Plan.choices)
    admin_email = forms.EmailField(label=gettext_lazy("First admin's e-mail"))
    admin_name = forms.CharField(label=gettext_lazy("First admin's name"), max_length=150, required=False)
    language = forms.ChoiceField(label=gettext_lazy("Default language"),
                                 choices=[("zh-hans", "简体中文"), ("en", "English")])


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
            try:
                result = services.agency_onboard(actor=request.user.email, **form.cleaned_data)
            except ValidationError as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, _("Agency %(name)s is ready.") % {"name": result.agency.name})
                return render(request, "console/onboarded.html", {"result": result})
        return render(request, "console/onboard.html", {"form": form}, status=400)


class AgencyDetailView(OperatorRequired, View):
    def get(self, request, slug):
        agency = get_object_or_404(Agency.objects.agencies(), slug=slug)
        events = AgencyEvent.objects.unscoped().filter(agency=agency)[:50]
        return render(request, "console/agency_detail.html", {"subject": agency, "events": events})

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
            elif action == "delete":
                services.agency_delete(agency=agency, actor=request.user.email,
                                       confirm_slug=request.POST.get("confirm_slug", ""))
                messages.success(request, _("Agency %(name)s and all its data were deleted.") % {"name": agency.name})
                return redirect("console:agencies")
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        return redirect("console:agency", slug=agency.slug)
