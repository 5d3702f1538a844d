"""Export and restore jobs (R-PLAT-2). Public schema.

An ``AgencyExport`` is one archive of everything an agency holds (see docs/portability.md), made in
the background and kept until ``expires_at``; its file lives under ``EXPORT_ROOT`` with an
unguessable name. An ``AgencyRestore`` is an operator's restore of such an archive into a new agency
(or over a deleted one). Neither is itself exported.
"""
import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from caravan.leases import Leased
from caravan.tenancy.scoping import AgencyScopedManager
from tenants.models import Agency


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", pgettext_lazy("job status", "Running")
    DONE = "done", _("Ready")
    FAILED = "failed", _("Failed")
    EXPIRED = "expired", _("Expired")


class AgencyExport(Leased):
    """Leased by its worker (caravan.leases): an export whose worker died is made again from the start
    (an archive is one consistent snapshot), or failed with a reason after its attempts."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="exports")
    requested_by = models.CharField(max_length=254, help_text="E-mail of the admin or operator who asked.")
    by_operator = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    tables_done = models.PositiveIntegerField(default=0)
    tables_total = models.PositiveIntegerField(default=0)
    file_name = models.CharField(max_length=120, blank=True, editable=False)  # under EXPORT_ROOT
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = AgencyScopedManager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["expires_at"], name="portability_export_expiry")]

    @property
    def downloadable(self) -> bool:
        return self.status == JobStatus.DONE and bool(self.file_name)


class AgencyRestore(models.Model):
    """An operator's restore. Names the agency by slug (no key: it may not exist yet, or any more)."""

    slug = models.CharField(max_length=30)
    archive = models.CharField(max_length=500)  # path of the uploaded or named archive
    requested_by = models.CharField(max_length=254)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    tables_done = models.PositiveIntegerField(default=0)
    tables_total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
