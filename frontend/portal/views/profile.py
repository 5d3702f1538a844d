"""The customer's own details in the portal (``me/``): language, travel preferences, loyalty numbers, family
dates and marketing e-mail. Every change goes through ``crm.portal.selfservice`` — the services staff use,
logged on the card's change history as "The customer, in the portal"."""
from django import forms
from django.conf import settings
from django.contrib import messages as flash
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView

from caravan.forms import errors_onto
from crm.customers.models import Preferences
from crm.portal import selfservice

from .. import session as portal_session
from ..base import PortalPage


class LanguageForm(forms.Form):
    language = forms.ChoiceField(label=gettext_lazy("Language of our e-mails and this portal"),
                                 choices=settings.LANGUAGES)


class PreferencesForm(forms.Form):
    seat = forms.ChoiceField(label=gettext_lazy("Seat"), required=False,
                             choices=[("", gettext_lazy("No preference"))] + Preferences.Seat.choices)
    meal = forms.ChoiceField(label=gettext_lazy("Special meal"), required=False,
                             choices=[("", gettext_lazy("No special meal"))] + Preferences.Meal.choices)
    cabin = forms.ChoiceField(label=gettext_lazy("Cabin"), required=False,
                              choices=[("", gettext_lazy("No preference"))] + Preferences.Cabin.choices)
    airlines = forms.CharField(label=gettext_lazy("Preferred airlines"), required=False, max_length=100,
                               help_text=gettext_lazy("Two-letter codes, separated by commas, e.g. CA, MU."))
    room_type = forms.CharField(label=gettext_lazy("Room"), required=False, max_length=40,
                                help_text=gettext_lazy("e.g. twin beds, high floor, non-smoking"))

    def clean_airlines(self):
        raw = self.cleaned_data["airlines"].replace("，", ",").replace("、", ",")
        return [code.strip() for code in raw.split(",") if code.strip()]


class LoyaltyForm(forms.Form):
    programme = forms.CharField(label=gettext_lazy("Programme"), max_length=60,
                                help_text=gettext_lazy("Airline code or hotel chain, e.g. CA, Marriott."))
    number = forms.CharField(label=gettext_lazy("Member number"), max_length=40)


class FamilyDateForm(forms.Form):
    label = forms.CharField(label=gettext_lazy("Occasion"), max_length=60,
                            help_text=gettext_lazy("e.g. wedding anniversary, daughter's birthday"))
    date = forms.DateField(label=gettext_lazy("Date"), widget=forms.DateInput(attrs={"type": "date"}))


class MarketingForm(forms.Form):
    opt_in = forms.BooleanField(label=gettext_lazy("Send me travel ideas and offers by e-mail"), required=False)


FORMS = {"language": LanguageForm, "preferences": PreferencesForm, "loyalty": LoyaltyForm, "family": FamilyDateForm,
         "marketing": MarketingForm}


class ProfileView(PortalPage, TemplateView):
    template_name = "portal/profile/me.html"

    def _initial(self) -> dict:
        prefs = selfservice.preferences_of(self.customer)
        return {
            "language": {"language": self.customer.language},
            "preferences": {"seat": prefs.seat, "meal": prefs.meal, "cabin": prefs.cabin,
                            "airlines": ", ".join(prefs.airlines or []), "room_type": prefs.room_type},
            "marketing": {"opt_in": selfservice.marketing_of(self.customer)},
        }

    def get_context_data(self, bound=None, **kwargs):
        initial = self._initial()
        forms_ = {name: (bound if bound is not None and bound.prefix == name else cls(prefix=name, initial=initial.get(name)))
                  for name, cls in FORMS.items()}
        return {**super().get_context_data(**kwargs), "forms": forms_,
                "loyalty": list(self.customer.loyalty.order_by("programme")),
                "family_dates": list(self.customer.family_dates.order_by("date")),
                "complaints": list(selfservice.complaints_of(self.customer)[:10])}

    def post(self, request):
        action = request.POST.get("action", "")
        customer = self.customer
        if action == "loyalty_remove":
            selfservice.loyalty_remove(customer=customer, pk=_int(request.POST.get("pk")))
            return self._done()
        if action == "family_remove":
            selfservice.family_date_remove(customer=customer, pk=_int(request.POST.get("pk")))
            return self._done()
        if action not in FORMS:
            return redirect("portal:me")
        form = FORMS[action](request.POST, prefix=action)
        if form.is_valid():
            data = form.cleaned_data
            with errors_onto(form):
                if action == "language":
                    selfservice.language_set(customer=customer, language=data["language"])
                    request.portal_session[portal_session.LANGUAGE] = data["language"]
                elif action == "preferences":
                    selfservice.preferences_set(customer=customer, **data)
                elif action == "loyalty":
                    selfservice.loyalty_set(customer=customer, **data)
                elif action == "family":
                    selfservice.family_date_add(customer=customer, **data)
                else:
                    selfservice.marketing_set(customer=customer, opt_in=data["opt_in"])
                return self._done()
        return self.render_to_response(self.get_context_data(bound=form), status=400)

    def _done(self):
        flash.success(self.request, _("Saved. Thank you for keeping your details up to date."))
        return redirect("portal:me")


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
