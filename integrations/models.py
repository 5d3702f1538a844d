"""Supplier integrations (R-INT-1 … R-INT-3), in the public schema: the suppliers and feeds operators
register, every run of a feed with its quarantined records, and the normalised inventory all agencies
search.

A feed with an ``agency`` carries that agency's own negotiated rates (pulled with its own supplier
credentials): its inventory rows carry the agency too and only that agency's searches see them.
Shared feeds have no agency. A feed's user name, password or token and push signing key are not
here: they are kept, encrypted, in the schema of the feed's owner (``integrations.credentials``).

Feeds, their runs and quarantined records (keyed through the feed), hotel rates and flight offers are
read through ``AgencyScopedManager`` (caravan.tenancy.scoping): inside an agency, the shared rows plus
its own; with none active, an error. The worker, the scheduler, the push endpoint and the console ask
for ``.unscoped()``.
"""
import secrets

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from caravan.leases import Leased
from caravan.tenancy.scoping import AgencyScopedManager
from tenants.models import Agency


class Supplier(models.Model):
    class Kind(models.TextChoices):
        HOTEL = "hotel", _("Hotels")
        AIR = "air", _("Flights")

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("inventory"), max_length=5, choices=Kind.choices)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


def _push_key() -> str:
    return secrets.token_urlsafe(18)


class Feed(models.Model):
    class Mode(models.TextChoices):
        PULL = "pull", _("Pulled on a schedule")
        PUSH = "push", _("Pushed to our endpoint")

    class Auth(models.TextChoices):
        NONE = "none", _("None")
        BASIC = "basic", _("User name and password")
        BEARER = "bearer", _("Bearer token")

    class Health(models.TextChoices):
        NEW = "new", _("Not run yet")
        OK = "ok", _("Healthy")
        FAILING = "failing", _("Last run failed")
        STALE = "stale", _("Stale")

    supplier = models.ForeignKey(Supplier, on_delete=models.CASCADE, related_name="feeds", verbose_name=_("supplier"))
    name = models.CharField(_("name"), max_length=120)
    connector = models.CharField(_("format"), max_length=30)  # a key of integrations.connectors.CONNECTORS
    mode = models.CharField(_("delivery"), max_length=5, choices=Mode.choices, default=Mode.PULL)
    endpoint = models.URLField(_("endpoint"), max_length=500, blank=True)
    auth = models.CharField(_("authentication"), max_length=6, choices=Auth.choices, default=Auth.NONE)
    push_key = models.CharField(max_length=40, unique=True, default=_push_key, editable=False)
    schedule_minutes = models.PositiveIntegerField(_("pull every (minutes)"), default=60)
    stale_after_minutes = models.PositiveIntegerField(_("stale after (minutes)"), default=24 * 60)
    agency = models.ForeignKey(Agency, null=True, blank=True, on_delete=models.CASCADE, related_name="feeds",
                               verbose_name=_("agency (own negotiated rates)"))
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    health = models.CharField(max_length=8, choices=Health.choices, default=Health.NEW, editable=False)
    alerted_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = AgencyScopedManager()  # shared feeds and the active agency's own; platform code: .unscoped()

    class Meta:
        ordering = ["supplier__name", "name"]

    def __str__(self):
        return f"{self.supplier.name} · {self.name}"


class FeedRun(Leased):
    """One run of a feed. Created when the run is queued and leased by its worker (caravan.leases):
    a run whose worker died is run again (the message's spool file is kept in ``checkpoint`` until
    the run ends; its inventory writes are one transaction, so a dead run wrote nothing)."""

    class Status(models.TextChoices):
        RUNNING = "running", pgettext_lazy("feed run status", "Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("Schedule")
        MANUAL = "manual", _("Run now")
        PUSH = "push", _("Push")

    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=8, choices=Trigger.choices)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    message_type = models.CharField(max_length=60, blank=True)
    bytes = models.BigIntegerField(default=0)
    rows_accepted = models.PositiveIntegerField(default=0)
    rows_rejected = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)  # why a run failed; never message content

    objects = AgencyScopedManager("feed__agency")

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["feed", "-started_at"])]


class QuarantinedRecord(models.Model):
    """A record a run refused, with the reason; the rest of the run went on."""
    run = models.ForeignKey(FeedRun, on_delete=models.CASCADE, related_name="quarantined")
    position = models.CharField(max_length=80)  # where in the message: "RateAmountMessage 12", "offer 3"
    reference = models.CharField(max_length=120, blank=True)  # the supplier's id for it, when it has one
    reason = models.CharField(max_length=300)
    raw = models.TextField(blank=True)  # the record as received, cut at 2,000 characters

    objects = AgencyScopedManager("run__feed__agency")

    class Meta:
        ordering = ["run", "id"]


class Hotel(models.Model):
    supplier = models.ForeignKey(Supplier, on_delete=models.CASCADE, related_name="hotels")
    code = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    chain_code = models.CharField(max_length=10, blank=True)
    city_code = models.CharField(max_length=3)  # IATA city (or airport) code
    country = models.CharField(max_length=2, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["supplier", "code"], name="integrations_hotel_code")]
        indexes = [models.Index(fields=["city_code"])]

    def __str__(self):
        return self.name


class HotelRate(models.Model):
    """One night of one room type under one rate plan. ``amount`` is null until a rate arrives
    (availability may come first); ``available`` null means not stated, 0 means closed."""
    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="+", db_index=False)
    agency = models.ForeignKey(Agency, null=True, on_delete=models.CASCADE, related_name="+", db_index=False)
    hotel = models.ForeignKey(Hotel, on_delete=models.CASCADE, related_name="rates", db_index=False)
    city_code = models.CharField(max_length=3)
    night = models.DateField()
    room_type = models.CharField(max_length=40)
    rate_plan = models.CharField(max_length=40)
    board = models.CharField(max_length=2, blank=True)  # RO, BB, HB, FB, AI
    amount = models.DecimalField(max_digits=12, decimal_places=2, null=True)
    currency = models.CharField(max_length=3, blank=True)
    available = models.IntegerField(null=True)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = AgencyScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["feed", "hotel", "room_type", "rate_plan", "night"],
                                               name="integrations_rate_key")]
        indexes = [models.Index(fields=["city_code", "night"], name="integrations_rate_city_night"),
                   # An agency's own rates, found without reading the shared ones (agency purge, export).
                   models.Index(fields=["agency"], name="integrations_rate_agency",
                                condition=models.Q(agency__isnull=False))]


class FlightOffer(models.Model):
    """One offer as the supplier priced it: the outbound journey's fields for search, every slice and
    segment as received in ``slices``."""
    feed = models.ForeignKey(Feed, on_delete=models.CASCADE, related_name="+", db_index=False)
    agency = models.ForeignKey(Agency, null=True, on_delete=models.CASCADE, related_name="+", db_index=False)
    offer_id = models.CharField(max_length=80)
    origin = models.CharField(max_length=3)
    destination = models.CharField(max_length=3)
    departure_date = models.DateField()  # local date at the origin
    departure = models.DateTimeField()
    arrival = models.DateTimeField()
    carrier = models.CharField(max_length=3)
    flight_numbers = models.CharField(max_length=60)  # "CA1501/CA1502"
    cabin = models.CharField(max_length=16)
    fare_brand = models.CharField(max_length=60, blank=True)
    checked_bags = models.PositiveSmallIntegerField(default=0)
    duration_minutes = models.PositiveIntegerField()
    stops = models.PositiveSmallIntegerField()
    price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    return_date = models.DateField(null=True)
    slices = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = AgencyScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["feed", "offer_id"], name="integrations_offer_key")]
        indexes = [models.Index(fields=["origin", "destination", "departure_date"], name="integrations_offer_route"),
                   models.Index(fields=["agency"], name="integrations_offer_agency",
                                condition=models.Q(agency__isnull=False))]
