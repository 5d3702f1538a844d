"""Document scans (issue 21): the encrypted file's row, the agency's wrapped data key, and each view of a scan."""
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.customers.models import Customer, TravelDocument
from crm.trips.models import Trip


class DataKey(models.Model):
    """The agency's own random data key (Fernet), kept wrapped with ``DOCUMENT_KEYS`` (the master keys from the
    environment). Files name the key they were encrypted with; a new data key (``storage.rekey``) re-encrypts
    them and retires the old one."""

    wrapped = models.TextField(editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]


class DocumentFile(models.Model):
    """One uploaded scan. The bytes live encrypted in ``MEDIA_ROOT/<schema>/documents/<storage_name>.bin``: no
    customer data in the name, no public URL; they stream only through fenced views (``services.file_open``)."""

    class Kind(models.TextChoices):
        PASSPORT = "passport", _("Passport")
        ID_CARD = "id_card", _("ID card")
        VISA = "visa", _("Visa")
        PHOTO = "photo", _("Photo")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for review")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected")

    customer = models.ForeignKey(Customer, verbose_name=_("whose document"), on_delete=models.CASCADE,
                                 related_name="document_files")
    trip = models.ForeignKey(Trip, null=True, blank=True, on_delete=models.SET_NULL, related_name="document_files")
    kind = models.CharField(_("document"), max_length=10, choices=Kind.choices)
    travel_document = models.ForeignKey(TravelDocument, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="files")
    storage_name = models.CharField(max_length=32, unique=True, editable=False)  # a random uuid (hex)
    key = models.ForeignKey(DataKey, on_delete=models.PROTECT, related_name="files", editable=False)
    content_type = models.CharField(max_length=40, editable=False)  # sniffed from the bytes
    size = models.PositiveIntegerField(editable=False)  # of the plaintext
    sha256 = models.CharField(max_length=64, editable=False)  # of the plaintext
    uploaded_by_customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL,
                                             related_name="+")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    uploaded_at = models.DateTimeField(_("uploaded"), default=timezone.now)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("document scan")
        verbose_name_plural = _("document scans")
        ordering = ["-uploaded_at", "-id"]
        indexes = [models.Index(fields=["status", "-uploaded_at"], name="docfile_status"),
                   models.Index(fields=["customer", "-uploaded_at"], name="docfile_customer")]

    @property
    def path(self) -> str:
        return f"documents/{self.storage_name}.bin"


class DocumentFileView(models.Model):
    """Every time someone saw a scan: a staff member (also in the access log) or the customer in the portal."""

    file = models.ForeignKey(DocumentFile, on_delete=models.CASCADE, related_name="views")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    via = models.CharField(max_length=10)

    class Meta:
        verbose_name = _("view of a document scan")
        verbose_name_plural = _("views of document scans")


