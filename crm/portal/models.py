"""The customer portal's own rows: the agency's portal settings, sign-in links, portal sessions' keys and
the messages between a customer and the agency (issue 21).

A customer is never a staff ``User``: a portal visitor is a ``Customer`` (a person) who proved they read
one of the e-mail addresses on their card, through a ``SignInLink`` (a link, or its six-digit code).
"""
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.customers.models import Customer


class PortalSettings(models.Model):
    """One row per agency (``pk`` 1): what its customers see — name, logo, colours, how to reach the
    agency — and the defaults a proposal starts from."""

    enabled = models.BooleanField(_("portal open to customers"), default=True,
                                  help_text=_("When off, customers cannot sign in and staff cannot send portal links."))
    brand_name = models.CharField(_("name shown to customers"), max_length=120, blank=True,
                                  help_text=_("Empty: the agency's name."))
    logo = models.BinaryField(_("logo"), null=True, blank=True, editable=False)
    logo_type = models.CharField(max_length=20, blank=True, editable=False)
    primary_colour = models.CharField(_("main colour"), max_length=7, default="#1f5f8b")
    accent_colour = models.CharField(_("accent colour"), max_length=7, default="#c8742b")
    contact_email = models.EmailField(_("contact e-mail"), blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=40, blank=True)
    contact_hours = models.CharField(_("opening hours"), max_length=120, blank=True,
                                     help_text=_("e.g. Mon–Fri 9:00–18:00"))
    proposal_included = models.TextField(_("included (default)"), blank=True,
                                         help_text=_("One line per item, shown on every new proposal."))
    proposal_excluded = models.TextField(_("not included (default)"), blank=True,
                                         help_text=_("One line per item, shown on every new proposal."))
    proposal_terms = models.TextField(_("terms (default)"), blank=True,
                                      help_text=_("Booking and cancellation terms the customer accepts."))
    deposit_percent = models.PositiveSmallIntegerField(_("deposit (percentage of the total)"), default=30,
                                                       help_text=_("The deposit a new quote asks for."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("portal settings")
        verbose_name_plural = _("portal settings")
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="portal_settings_one_row"),
                       models.CheckConstraint(condition=Q(deposit_percent__lte=100), name="portal_deposit_percent")]

    def __str__(self):
        return self.brand_name or "portal"


class SignInLink(models.Model):
    """A short-lived, single-use way in: the link's token and its six-digit code are stored hashed.

    ``purpose`` says who started it: the customer asking on the sign-in page, or a staff member's
    invitation (longer-lived, and it opens ``next_path``)."""

    class Purpose(models.TextChoices):
        REQUEST = "request", _("Asked for by the customer")
        INVITATION = "invite", _("Sent by staff")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="portal_links")
    email = models.EmailField()
    purpose = models.CharField(max_length=8, choices=Purpose.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    code_hash = models.CharField(max_length=64)
    code_tries = models.PositiveSmallIntegerField(default=0)
    next_path = models.CharField(max_length=200, blank=True)
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_from = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        verbose_name = _("portal sign-in link")
        verbose_name_plural = _("portal sign-in links")
        indexes = [models.Index(fields=["customer", "-created_at"])]

    @property
    def live(self) -> bool:
        return self.used_at is None and self.expires_at > timezone.now()


class Message(models.Model):
    """One message between a customer and the agency about a trip (or in general): a customer writes in
    the portal; staff answer from the trip or the card, and the answer reaches the customer by e-mail and
    in the portal."""

    class Direction(models.TextChoices):
        FROM_CUSTOMER = "in", _("From the customer")
        TO_CUSTOMER = "out", _("To the customer")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="portal_messages",
                                 help_text="The person who wrote or is written to.")
    trip = models.ForeignKey("trips.Trip", null=True, blank=True, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    body = models.TextField(_("message"))
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True, help_text="When the other side opened it.")
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("portal message")
        verbose_name_plural = _("portal messages")
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["customer", "at"]), models.Index(fields=["trip", "at"])]
