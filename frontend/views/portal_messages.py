"""Staff side of portal messages: the trip page's and the card's "Messages from the portal" box (loaded by
htmx), and the reply (``crm.portal.messaging``). Reading needs what the page needs; answering needs
``Cap.PIPELINE_WORK`` or ``Cap.COMPLAINTS_HANDLE`` (finance reads, does not answer)."""
from django import forms
from django.contrib import messages as flash
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.roles import Cap
from caravan.forms import errors_onto
from crm.customers.models import Customer
from crm.portal import messaging
from crm.portal.selectors import visible_trips
from crm.trips.models import Trip

from .base import AgencyPage
from .trips import TripPage


class ReplyForm(forms.Form):
    body = forms.CharField(label=gettext_lazy("Answer"), max_length=messaging.BODY_MAX,
                           widget=forms.Textarea(attrs={"rows": 3}))


class _Replying:
    def permits(self, user) -> bool:
        return messaging.can_reply(user)


def _mark_read(request, conversations, trip_of):
    for key, rows in conversations:
        customer, trip = trip_of(key, rows)
        messaging.messages_read_by_staff(actor=request.user, customer=customer, trip=trip)


class TripMessagesView(TripPage, View):
    """The trip's conversations, one per person who wrote or was written to."""

    def get(self, request, pk):
        trip = get_object_or_404(Trip.objects.select_related("customer"), pk=pk)
        conversations = messaging.trip_conversations(trip)
        unread = {c.pk for c, rows in conversations for m in rows if m.direction == "in" and m.read_at is None}
        _mark_read(request, conversations, lambda customer, rows: (customer, trip))
        people = [trip.customer] + [t.customer for t in trip.travelers.select_related("customer")]
        people = list({p.pk: p for p in people if p.kind == Customer.Kind.PERSON}.values())
        return render(request, "frontend/portal_messages/_trip.html", {
            "trip": trip, "conversations": conversations, "unread": unread, "people": people,
            "can_reply": messaging.can_reply(request.user), "form": ReplyForm()})


class CustomerMessagesView(AgencyPage, View):
    required_cap = Cap.CUSTOMERS_VIEW

    def get(self, request, pk):
        customer = get_object_or_404(Customer, pk=pk)
        conversations = messaging.customer_conversations(customer)
        _mark_read(request, conversations, lambda trip, rows: (customer, trip))
        return render(request, "frontend/portal_messages/_customer.html", {
            "customer": customer, "conversations": conversations,
            "can_reply": messaging.can_reply(request.user) and customer.kind == Customer.Kind.PERSON,
            "form": ReplyForm(), "has_general": any(trip is None for trip, rows in conversations)})


class TripReplyView(_Replying, TripPage, View):
    def post(self, request, pk):
        trip = get_object_or_404(Trip, pk=pk)
        people = {trip.customer_id} | set(trip.travelers.values_list("customer_id", flat=True))
        customer = get_object_or_404(Customer, pk=_int(request.POST.get("customer")) or trip.customer_id, pk__in=people)
        return _reply(request, customer, trip, redirect_to=("trip_detail", trip.pk))


class CustomerReplyView(_Replying, AgencyPage, View):
    required_cap = Cap.CUSTOMERS_VIEW

    def post(self, request, pk):
        customer = get_object_or_404(Customer, pk=pk)
        trip_id = _int(request.POST.get("trip"))
        trip = get_object_or_404(visible_trips(customer), pk=trip_id) if trip_id else None
        return _reply(request, customer, trip, redirect_to=("customer_detail", customer.pk))


def _reply(request, customer, trip, *, redirect_to):
    form = ReplyForm(request.POST)
    if form.is_valid():
        with errors_onto(form):
            messaging.message_reply(actor=request.user, customer=customer, trip=trip, body=form.cleaned_data["body"])
            flash.success(request, _("Answer sent to %(name)s: in the portal and by e-mail.") % {"name": customer.name})
            return redirect(*redirect_to)
    for errors in form.errors.values():
        for error in errors:
            flash.error(request, error)
    return redirect(*redirect_to)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
