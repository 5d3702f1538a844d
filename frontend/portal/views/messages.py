"""The customer's conversations with the agency, the trip's survey and "Something went wrong?" (issue 21).

Every object is reached from the signed-in customer: trips through ``self.trip(pk)`` (404 when not theirs),
messages and complaints through ``crm.portal.messaging`` / ``selfservice`` filtered by ``self.customer``.
Messages are per person: a fellow traveler sees only their own conversation about a trip.
"""
from django import forms
from django.contrib import messages as flash
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from caravan.forms import errors_onto
from crm.care.models import Complaint
from crm.portal import messaging, selfservice

from ..base import PortalPage


class MessageForm(forms.Form):
    body = forms.CharField(label=gettext_lazy("Your message"), max_length=messaging.BODY_MAX,
                           widget=forms.Textarea(attrs={"rows": 3, "maxlength": messaging.BODY_MAX}))


class SurveyForm(forms.Form):
    csat = forms.TypedChoiceField(label=gettext_lazy("How satisfied are you with this trip?"), coerce=int,
                                  choices=[(n, str(n)) for n in range(5, 0, -1)], widget=forms.RadioSelect)
    nps = forms.TypedChoiceField(label=gettext_lazy("How likely are you to recommend us to a friend (0–10)?"),
                                 coerce=int, choices=[(n, str(n)) for n in range(0, 11)], widget=forms.RadioSelect)
    comment = forms.CharField(label=gettext_lazy("Anything you would like to tell us? (optional)"), required=False,
                              max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))


class ComplaintForm(forms.Form):
    category = forms.ChoiceField(label=gettext_lazy("What was it about?"), choices=Complaint.Category.choices)
    description = forms.CharField(label=gettext_lazy("What happened?"), max_length=selfservice.DESCRIPTION_MAX,
                                  widget=forms.Textarea(attrs={"rows": 5}))


# --- the trip page's panel and the home page's notices (frontend.portal.panels) ---------------------

def trip_panel(page, trip) -> dict:
    """The conversation about this trip, with a form; opening the trip page reads the agency's answers."""
    conversation = list(messaging.thread(page.customer, trip))
    messaging.messages_read_by_customer(customer=page.customer, trip=trip)
    return {"template": "portal/messages/_panel.html", "trip": trip, "conversation": conversation,
            "form": MessageForm(), "survey": selfservice.open_survey(page.customer, trip),
            "complaints": list(selfservice.complaints_of(page.customer).filter(trip=trip))}


def home_notices(page, trips) -> list[dict]:
    notices = []
    unread = {}
    visible = {trip.pk for trip in trips}
    for message in messaging.unread_answers(page.customer).select_related("trip"):
        if message.trip_id is None or message.trip_id in visible:  # a trip they no longer see: not linked
            unread.setdefault(message.trip_id, message)
    for trip_id, message in unread.items():
        url = (reverse("portal:trip", args=[trip_id]) + "#messages") if trip_id else reverse("portal:messages")
        text = (_("New reply about “%(trip)s”") % {"trip": message.trip.title}) if trip_id else _("New reply from us")
        notices.append({"text": text, "url": url})
    for survey in selfservice.open_surveys(page.customer, trips):
        notices.append({"text": _("How was “%(trip)s”? Tell us in two clicks.") % {"trip": survey.trip.title},
                        "url": reverse("portal:survey", args=[survey.trip_id])})
    return notices


# --- pages ------------------------------------------------------------------------------------------

class MessagesView(PortalPage, TemplateView):
    """All the customer's conversations, and the one not about a trip (with its form)."""

    template_name = "portal/messages/index.html"

    def get_context_data(self, **kwargs):
        return self._context(MessageForm(), **kwargs)

    def _context(self, form, **kwargs):
        general = list(messaging.thread(self.customer, None))
        messaging.messages_read_by_customer(customer=self.customer, trip=None)
        visible = set(self.trips().values_list("pk", flat=True))
        conversations = [c for c in messaging.conversations_of(self.customer)
                         if c["trip"] is not None and c["trip"].pk in visible]
        return {**super().get_context_data(**kwargs), "conversations": conversations, "general": general,
                "form": form, "trips": list(self.trips()[:20])}

    def post(self, request):
        form = MessageForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                messaging.message_from_customer(customer=self.customer, trip=None, body=form.cleaned_data["body"])
                flash.success(request, _("Message sent. We will answer here and by e-mail."))
                return redirect(reverse("portal:messages") + "#write")
        return self.render_to_response(self._context(form), status=400)


class TripMessageView(PortalPage, View):
    """Write about one trip (the form is on the trip's page)."""

    def post(self, request, trip):
        trip = self.trip(trip)
        form = MessageForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                messaging.message_from_customer(customer=self.customer, trip=trip, body=form.cleaned_data["body"])
                flash.success(request, _("Message sent. We will answer here and by e-mail."))
                return redirect(reverse("portal:trip", args=[trip.pk]) + "#messages")
        return render(request, "portal/messages/write.html", {"trip": trip, "form": form}, status=400)


class SurveyView(PortalPage, View):
    """The trip's satisfaction survey, when one was made for this customer (404 otherwise)."""

    template_name = "portal/messages/survey.html"

    def get(self, request, trip):
        return self._page(request, self.trip(trip), SurveyForm())

    def _page(self, request, trip, form, status=200):
        survey = selfservice.survey_of(self.customer, trip)
        if survey is None:
            raise Http404
        return render(request, self.template_name, {"trip": trip, "form": form, "survey": survey}, status=status)

    def post(self, request, trip):
        trip = self.trip(trip)
        form = SurveyForm(request.POST)
        if form.is_valid() and selfservice.survey_of(self.customer, trip) is not None:
            with errors_onto(form):
                selfservice.survey_answer(customer=self.customer, trip=trip, **form.cleaned_data)
                flash.success(request, _("Thank you! Your answer helps us plan better trips."))
                return redirect("portal:trip", trip.pk)
        return self._page(request, trip, form, status=400)


class ComplaintView(PortalPage, View):
    """"Something went wrong?" on a trip, and the customer's reports about it with their status."""

    template_name = "portal/messages/complaint.html"

    def get(self, request, trip):
        trip = self.trip(trip)
        return self._page(request, trip, ComplaintForm())

    def _page(self, request, trip, form, status=200):
        return render(request, self.template_name, {
            "trip": trip, "form": form, "complaints": list(selfservice.complaints_of(self.customer).filter(trip=trip))},
            status=status)

    def post(self, request, trip):
        trip = self.trip(trip)
        form = ComplaintForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                selfservice.complaint_from_customer(customer=self.customer, trip=trip, **form.cleaned_data)
                flash.success(request, _("Thank you for telling us. Your consultant will contact you."))
                return redirect(reverse("portal:complaint", args=[trip.pk]))
        return self._page(request, trip, form, status=400)
