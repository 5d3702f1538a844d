"""Paying a trip's deposit and balance online, with the agency's own Stripe account (``crm.checkout``).

The trip panel shows the schedule; the pay page turns the card into a Stripe PaymentMethod in the browser
(Stripe.js, or localstripe's stand-in) and posts only its id; the server confirms the intent whose amount
the schedule set (``crm.checkout.services``). The payment page then shows "received" once Stripe's
answer is recorded — by the webhook or by this page asking Stripe itself, whichever comes first.
"""
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View

from caravan.formatting import day, money
from caravan.lazy import lazy_module
from crm.checkout import selectors, services
from crm.checkout.models import OnlinePayment
from crm.trips.models import Trip

from ..base import PortalPage

stripe = lazy_module("stripe")  # about 30 MB: imported by the first Stripe call, not by every web worker

WAITING = (OnlinePayment.Status.CREATED, OnlinePayment.Status.FAILED)


def trip_panel(page, trip) -> dict | None:
    """The trip page's "Payments" panel: the schedule, and a pay button for what is due now."""
    lines = selectors.schedule(trip)
    if not lines:
        return None
    return {"template": "portal/payments/_panel.html", "trip": trip, "lines": lines,
            "online": selectors.account() is not None, "paid": selectors.paid_of(trip),
            "total": selectors.total_of(trip)}


def home_notices(page, trips) -> list[dict]:
    """A deposit to pay, or a balance due within 30 days (or overdue), as a "to do" line."""
    notices, soon = [], timezone.localdate() + timedelta(days=30)
    trips = [trip for trip in trips if trip.status != Trip.Status.CANCELLED]  # nothing is payable on those
    schedules = selectors.schedules(trips)
    for trip in trips:
        for line in schedules[trip.pk]:
            if not line.payable:
                continue
            url = reverse("portal:trip", args=[trip.pk]) + "#payments"
            amount = money(line.to_pay, trip.currency)
            if line.kind == OnlinePayment.Kind.DEPOSIT:
                notices.append({"text": _("Deposit of %(amount)s to pay for “%(trip)s”") % {
                    "amount": amount, "trip": trip.title}, "url": url})
            elif line.due_on and line.due_on <= soon:
                overdue = line.due_on < timezone.localdate()
                notices.append({"text": _("Balance of %(amount)s for “%(trip)s” due %(day)s") % {
                    "amount": amount, "trip": trip.title, "day": day(line.due_on)},
                    "url": url, "tone": "warn" if overdue else ""})
    return notices


def _stripe_js(account) -> dict:
    base = settings.STRIPE_API_BASE.rstrip("/")
    return {"url": f"{base}/js.stripe.com/v3/" if base else "https://js.stripe.com/v3/",
            "key": account.publishable_key}


class PayView(PortalPage, View):
    """``trips/<trip>/pay/<kind>/``: the card form for what is due now of the deposit or the balance."""

    template_name = "portal/payments/pay.html"

    def _kind(self):
        kind = self.kwargs["kind"]
        if kind not in OnlinePayment.Kind.values:
            raise Http404
        return kind

    def _page(self, request, trip, online, *, error="", action_secret="", status=200):
        account = selectors.account()
        try:
            secret = "" if action_secret else services.setup_secret()
        except stripe.StripeError:
            secret, error = "", error or _("Payments cannot be taken right now; please try again later.")
        return render(request, self.template_name, {
            "trip": trip, "online": online, "stripe_js": _stripe_js(account), "setup_secret": secret,
            "action_secret": action_secret, "error": error,
            "done_url": reverse("portal:payment", args=[trip.pk, online.pk])}, status=status)

    def get(self, request, trip, kind):
        trip, kind = self.trip(trip), self._kind()
        if selectors.account() is None:
            return redirect("portal:trip", trip.pk)
        try:
            online = services.intent_create(customer=self.customer, trip=trip, kind=kind)
        except ValidationError as exc:
            for errors in exc.message_dict.values():
                for error in errors:
                    messages.error(request, error)
            return redirect("portal:trip", trip.pk)
        return self._page(request, trip, online)

    def post(self, request, trip, kind):
        trip, kind = self.trip(trip), self._kind()
        if selectors.account() is None:
            return redirect("portal:trip", trip.pk)
        online = (OnlinePayment.objects.filter(trip__in=self.trips(), trip=trip, kind=kind,
                                               status=OnlinePayment.Status.CREATED,
                                               pk=request.POST.get("online") or 0).first())
        if online is None:
            raise Http404
        try:
            status = services.intent_pay(online=online, payment_method=request.POST.get("payment_method", ""))
        except ValidationError as exc:
            error = " ".join(e for errors in exc.message_dict.values() for e in errors)
            online.refresh_from_db()
            if online.status != OnlinePayment.Status.CREATED:  # declined: the next try is a new payment
                try:
                    online = services.intent_create(customer=self.customer, trip=trip, kind=kind)
                except ValidationError:
                    return redirect("portal:trip", trip.pk)
            return self._page(request, trip, online, error=error, status=400)
        if status == "requires_action":  # 3-D Secure: the browser completes it, then opens the payment page
            secret = services.client().v1.payment_intents.retrieve(online.intent_id).client_secret
            return self._page(request, trip, online, action_secret=secret)
        return redirect("portal:payment", trip.pk, online.pk)


class PaymentView(PortalPage, View):
    """``trips/<trip>/payments/<payment>/``: "Payment received" once recorded; until then it asks Stripe
    (the webhook may be late) and the page polls ``…/status/`` every two seconds."""

    def _online(self, trip, payment) -> OnlinePayment:
        online = (OnlinePayment.objects.filter(trip__in=self.trips(), trip_id=self.trip(trip).pk, pk=payment)
                  .select_related("trip", "payment").first())
        if online is None:
            raise Http404
        if online.status in WAITING and selectors.account() is not None:
            try:
                if services.payment_succeeded(online.intent_id) in ("recorded", "recorded before", "refunded"):
                    online.refresh_from_db()
            except stripe.StripeError:
                pass  # Stripe is away: the webhook records it
        return online

    def get(self, request, trip, payment):
        online = self._online(trip, payment)
        if request.GET.get("poll"):
            return JsonResponse({"recorded": online.status != OnlinePayment.Status.CREATED})
        return render(request, "portal/payments/done.html", {
            "trip": online.trip, "online": online,
            "poll_url": reverse("portal:payment", args=[online.trip_id, online.pk]) + "?poll=1"})
