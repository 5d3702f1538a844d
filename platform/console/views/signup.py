"""Self-service sign-up on the platform domain (R-BILL-1, R-PLAT-2): an agency signs itself up and
starts the trial without a card; its first admin gets the invitation e-mail to set a password.

The one path is ``tenants.services.agency_onboard``, as for operators. Abuse is bounded by a limit
of sign-ups per client address and hour (in the cache) and a field humans leave empty.
"""
from django import forms
from django.core.cache import cache
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from caravan.forms import errors_onto
from tenants import services

SIGNUPS_PER_HOUR = 5


class SignupForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Agency name"), max_length=200)
    slug = forms.CharField(label=gettext_lazy("Address"), max_length=30,
                           help_text=gettext_lazy("Lowercase letters, digits and hyphens: <address>.<platform domain>."))
    admin_name = forms.CharField(label=gettext_lazy("Your name"), max_length=150)
    admin_email = forms.EmailField(label=gettext_lazy("Your work e-mail"))
    language = forms.ChoiceField(label=gettext_lazy("Language"), choices=[("zh-hans", "简体中文"), ("en", "English")])
    website = forms.CharField(required=False, widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
                              label=gettext_lazy("Leave this empty"))


def _trial_plan() -> str:
    """The plan a self-service agency starts its trial on: the cheapest plan on offer."""
    from billing.models import Plan

    offered = services.offered_plans()
    cheapest = Plan.objects.filter(code__in=offered, active=True).order_by("seat_price_month").first()
    return cheapest.code if cheapest else next(iter(offered))


class SignupView(View):
    template = "console/signup.html"

    def get(self, request):
        return render(request, self.template, {"form": SignupForm()})

    def post(self, request):
        form = SignupForm(request.POST)
        key = f"signup:ip:{request.META.get('REMOTE_ADDR', '')}"
        if cache.get(key, 0) >= SIGNUPS_PER_HOUR:
            form.add_error(None, _("Too many sign-ups from your network in the last hour. Please try again later."))
            return render(request, self.template, {"form": form}, status=429)
        if form.is_valid():
            if form.cleaned_data["website"]:  # filled in by a robot: look done, do nothing
                return render(request, "console/signed_up.html", {"email": form.cleaned_data["admin_email"]})
            data = {k: v for k, v in form.cleaned_data.items() if k != "website"}
            with errors_onto(form):
                result = services.agency_onboard(plan=_trial_plan(), actor="self-service", **data)
                cache.set(key, cache.get(key, 0) + 1, 3600)
                return render(request, "console/signed_up.html", {"email": result.admin_email,
                                                                   "agency": result.agency})
        return render(request, self.template, {"form": form}, status=400)
