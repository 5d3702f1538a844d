"""Proposals and their acceptance (issue 21).

A ``Proposal`` is one *version* of what a quote shows the customer, frozen when staff send it: the
``snapshot`` (what the page and the PDF show, never costs, margins or suppliers' internals) and
``content_hash``, the SHA-256 of its canonical JSON (``services.content_hash``). Sending a new version
supersedes the open one. An ``Acceptance`` records who accepted which content — the hash of what their
page showed, which must equal the proposal's — with their typed name, the tick, when and from where.
"""
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.customers.models import Customer


class Proposal(models.Model):
    trip = models.ForeignKey("trips.Trip", on_delete=models.CASCADE, related_name="proposals")
    version = models.PositiveIntegerField(_("version"))
    snapshot = models.JSONField(help_text="What the customer is shown, frozen at sending (services.snapshot_of).")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the snapshot's canonical JSON.")
    message = models.TextField(_("covering note"), blank=True)
    recipient = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    recipient_email = models.EmailField(blank=True)
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    sent_at = models.DateTimeField(_("sent"), default=timezone.now)
    superseded_at = models.DateTimeField(_("superseded"), null=True, blank=True)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)

    class Meta:
        verbose_name = _("proposal")
        verbose_name_plural = _("proposals")
        ordering = ["trip", "-version"]
        constraints = [models.UniqueConstraint(fields=["trip", "version"], name="proposals_version_once"),
                       models.UniqueConstraint(fields=["trip"], condition=Q(superseded_at__isnull=True),
                                               name="proposals_one_open_per_trip")]

    def __str__(self):
        return f"{self.trip_id} v{self.version}"

    @property
    def hash_short(self) -> str:
        return self.content_hash[:12]


class Acceptance(models.Model):
    proposal = models.OneToOneField(Proposal, on_delete=models.CASCADE, related_name="acceptance")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+",
                                 help_text="The person who accepted, signed in to the portal.")
    typed_name = models.CharField(_("full name"), max_length=200)
    agreed = models.BooleanField(_("I accept the terms"))
    at = models.DateTimeField(default=timezone.now)
    address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    content_hash = models.CharField(max_length=64, help_text="The hash of what the customer's page showed.")
    # Claimed (UPDATE … WHERE NULL) by the confirmation e-mail's task before it sends: never sent twice.
    confirmation_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("acceptance")
        verbose_name_plural = _("acceptances")
        constraints = [models.CheckConstraint(condition=Q(agreed=True), name="proposals_acceptance_agreed")]
