"""Trips (orders): what the customer bought, who travels, what they paid (R-SALE-3 … R-SALE-5).

A trip starts life as the *quote* of an opportunity, and the same record becomes the order when the
opportunity is won, so nothing is typed twice. Money is ``Decimal`` in the trip's currency (the
agency's); totals are computed from the items and payments. The one stored copy, ``TripSummary``, is
kept by the database itself (triggers) for the queries that add up a whole agency's trips.
"""
import re

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.customers.models import Customer

# A price as the inventory stores it in an item's details: "1240.00 CNY".
_STORED_PRICE = re.compile(r"(-?[0-9]+(?:\.[0-9]+)?) ([A-Z]{3})")


def _shown_value(value) -> str:
    """A detail as people read it: a stored price through the formatting layer, else as it is."""
    price = _STORED_PRICE.fullmatch(value) if isinstance(value, str) else None
    if price:
        from caravan import formatting

        return formatting.money(price[1], price[2])
    return str(value)


MONEY = {"max_digits": 12, "decimal_places": 2}


class Trip(models.Model):
    class Status(models.TextChoices):
        QUOTE = "quote", _("Quote")
        CONFIRMED = "confirmed", _("Confirmed")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")

    customer = models.ForeignKey(Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="trips",
                                 help_text=_("Who books and pays: a person or a corporate account."))
    opportunity = models.OneToOneField("pipeline.Opportunity", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="trip")
    title = models.CharField(_("title"), max_length=200)
    destination = models.CharField(_("destination"), max_length=120, blank=True)
    depart_on = models.DateField(_("departure"), null=True, blank=True)
    return_on = models.DateField(_("return"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUOTE)
    currency = models.CharField(_("currency"), max_length=3)
    needs_visa = models.BooleanField(_("visa trip"), default=False)
    balance_due_on = models.DateField(_("balance due"), null=True, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("owner"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="trips")
    notes = models.TextField(_("notes"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)
    cancel_reason = models.CharField(_("cancellation reason"), max_length=300, blank=True)
    # Set by the after-trip job when it has made the follow-up task and queued the survey.
    followed_up_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("trip")
        verbose_name_plural = _("trips")
        ordering = ["-depart_on", "-id"]
        indexes = [
            models.Index(fields=["customer", "-depart_on"], name="trips_trip_customer"),
            # The after-trip job: returned trips not yet followed up.
            models.Index(fields=["return_on"], condition=Q(followed_up_at__isnull=True, status__in=["confirmed", "completed"]),
                         name="trips_trip_to_follow_up"),
            models.Index(fields=["owner", "status"], name="trips_trip_owner_status"),
        ]

    def __str__(self):
        return self.title

    @property
    def reference(self) -> str:
        return f"T{self.pk:06d}"


class Traveler(models.Model):
    class VisaCancellation(models.TextChoices):
        NOT_NEEDED = "", _("Not needed")
        AWAITING = "awaiting", _("Waiting for the passport")
        RECEIVED = "received", _("Passport received, at the consulate")
        DONE = "done", _("Visa cancelled, passport returned")

    trip = models.ForeignKey(Trip, on_delete=models.CASCADE, related_name="travelers")
    customer = models.ForeignKey(Customer, verbose_name=_("traveler"), on_delete=models.PROTECT, related_name="travels")
    company = models.ForeignKey(Customer, verbose_name=_("travels for"), null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", help_text=_("The corporate account, for a business traveler."))
    is_lead = models.BooleanField(_("lead traveler"), default=False)
    # The post-trip passport return some consulates ask for (销签).
    visa_cancellation = models.CharField(_("visa cancellation"), max_length=10, choices=VisaCancellation.choices,
                                         blank=True, default="")

    class Meta:
        verbose_name = _("traveler")
        verbose_name_plural = _("travelers")
        ordering = ["-is_lead", "id"]
        constraints = [models.UniqueConstraint(fields=["trip", "customer"], name="trips_traveler_once")]
        indexes = [models.Index(fields=["customer"], name="trips_traveler_customer")]


class ItineraryItem(models.Model):
    class Kind(models.TextChoices):
        FLIGHT = "flight", _("Flight")
        HOTEL = "hotel", _("Hotel")
        TRANSFER = "transfer", _("Transfer")
        TOUR = "tour", _("Tour")
        VISA = "visa", _("Visa service")
        INSURANCE = "insurance", _("Insurance")
        OTHER = "other", _("Other")

    trip = models.ForeignKey(Trip, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    description = models.CharField(_("description"), max_length=300)
    supplier = models.CharField(_("supplier"), max_length=120, blank=True)
    starts_on = models.DateField(_("from"), null=True, blank=True)
    ends_on = models.DateField(_("to"), null=True, blank=True)
    confirmation = models.CharField(_("confirmation number"), max_length=60, blank=True)
    cost = models.DecimalField(_("cost"), default=0, **MONEY)
    sell = models.DecimalField(_("sell price"), default=0, **MONEY)
    details = models.JSONField(default=dict, blank=True, help_text="Flight numbers, room type… as the supplier gave them.")

    class Meta:
        verbose_name = _("itinerary item")
        verbose_name_plural = _("itinerary items")
        ordering = ["starts_on", "id"]

    @property
    def margin(self):
        return self.sell - self.cost

    @property
    def details_shown(self) -> list[str]:
        """The details as a reader takes them in: a flight "CA 1501", "PVG → KIX" (origin first: PostgreSQL
        keeps a JSON object's keys shortest first, so the stored order put "to" before "from"); a hotel its
        room then board; then any other value."""
        details = dict(self.details or {})
        shown = []
        flight = " ".join(str(details.pop(key)) for key in ("carrier", "number") if details.get(key))
        if flight:
            shown.append(flight)
        route = [str(details.pop(key)) for key in ("from_airport", "to_airport") if details.get(key)]
        if route:
            shown.append(" → ".join(route))
        shown += [str(details.pop(key)) for key in ("room_type", "board") if details.get(key)]
        return shown + [_shown_value(value) for value in details.values() if str(value)]


class TripSummary(models.Model):
    """One trip as a row of figures: who bought it, its status, destination and dates, and the sums of
    its items.

    Kept by PostgreSQL triggers on the trips and items tables (migration 0002), whatever path wrote
    them (ORM, bulk, raw SQL, imports), inside the writing transaction; read-only for Django. The
    segment builder's behaviour filters read 1 narrow row per trip here instead of joining trips to
    every booking line (bench/segments.py: 200,000 trips, 1,000,000 lines).
    """

    trip = models.OneToOneField(Trip, primary_key=True, on_delete=models.CASCADE, related_name="summary")
    customer = models.ForeignKey(Customer, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    status = models.CharField(max_length=10)
    destination = models.CharField(max_length=120)
    depart_on = models.DateField(null=True)
    return_on = models.DateField(null=True)
    confirmed_at = models.DateTimeField(null=True)
    created_at = models.DateTimeField()
    sell = models.DecimalField(max_digits=14, decimal_places=2)
    cost = models.DecimalField(max_digits=14, decimal_places=2)
    items = models.PositiveIntegerField()
    discounted_items = models.PositiveIntegerField(help_text="Items whose details say discounted: true/1/yes.")

    class Meta:
        verbose_name = _("trip summary")
        verbose_name_plural = _("trip summaries")

    def __str__(self):
        return f"{self.trip_id}: {self.sell}"


class Payment(models.Model):
    """One money movement, recorded by finance. Never edited: a mistake is corrected by a refund."""

    class Kind(models.TextChoices):
        DEPOSIT = "deposit", _("Deposit")
        BALANCE = "balance", _("Balance")
        REFUND = "refund", _("Refund")

    class Method(models.TextChoices):
        BANK = "bank", _("Bank transfer")
        CARD = "card", _("Card")
        ALIPAY = "alipay", _("Alipay")
        WECHAT = "wechat", _("WeChat Pay")
        CASH = "cash", _("Cash")
        OTHER = "other", _("Other")

    trip = models.ForeignKey(Trip, on_delete=models.PROTECT, related_name="payments")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    amount = models.DecimalField(_("amount"), **MONEY, help_text=_("Always positive; a refund is a refund."))
    currency = models.CharField(_("currency"), max_length=3)
    method = models.CharField(_("method"), max_length=10, choices=Method.choices, default=Method.BANK)
    received_on = models.DateField(_("date"), default=timezone.localdate)
    reference = models.CharField(_("reference"), max_length=100, blank=True)
    refund_of = models.ForeignKey("self", verbose_name=_("refund of"), null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="refunds")
    note = models.CharField(_("note"), max_length=300, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["received_on", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="trips_payment_positive"),
            models.CheckConstraint(condition=Q(kind="refund") | Q(refund_of__isnull=True), name="trips_payment_refund_of_refund"),
        ]


class ChecklistItem(models.Model):
    """One document a traveler owes for a visa (R-SALE-5): required → received → returned."""

    class Document(models.TextChoices):
        PASSPORT = "passport", _("Passport")
        ID_CARD = "id_card", _("ID card copy")
        PHOTOS = "photos", _("Photos")
        ASSETS = "assets", _("Proof of assets (bank statement, property)")
        EMPLOYMENT = "employment", _("Employment certificate")
        HOUSEHOLD = "household", _("Household register (hukou)")
        FORM = "form", _("Signed application form")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        REQUIRED = "required", _("Required")
        RECEIVED = "received", _("Received")
        RETURNED = "returned", _("Returned")
        WAIVED = "waived", _("Not needed")

    traveler = models.ForeignKey(Traveler, on_delete=models.CASCADE, related_name="checklist")
    document = models.CharField(_("document"), max_length=12, choices=Document.choices)
    label = models.CharField(_("description"), max_length=120, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.REQUIRED)
    received_at = models.DateTimeField(_("received"), null=True, blank=True)
    returned_at = models.DateTimeField(_("returned"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("checklist item")
        verbose_name_plural = _("checklist items")
        ordering = ["traveler", "id"]
