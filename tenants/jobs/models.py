"""Per agency and periodic job, the next time that job has work (public schema).

The fan-out queues a job only in the agencies whose ``due_at`` has come; a missing row counts as
due now (new agencies need nothing at onboarding). See ``services`` for the rule.
"""
from django.db import models
from django.utils import timezone

from caravan.tenancy.scoping import AgencyScopedManager
from tenants.models import Agency


class AgencyJob(models.Model):
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+", db_index=False)
    job = models.CharField(max_length=100, help_text="The Celery task name, e.g. campaigns.tick.")
    # When the fan-out must next queue it. While a run is queued or running, the end of its lease.
    due_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)  # last queued by the fan-out
    ran_at = models.DateTimeField(null=True, blank=True)  # last run that finished and recorded its next due time
    pulled_at = models.DateTimeField(null=True, blank=True)  # last time new work pulled due_at earlier

    objects = AgencyScopedManager()  # the fan-out and the runs use raw SQL (services); platform code .unscoped()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agency", "job"], name="agency_jobs_one_row_per_job")]
        indexes = [models.Index(fields=["job", "due_at"], name="agency_jobs_job_due")]

    def __str__(self):
        return f"{self.job} @ {self.agency_id}: {self.due_at:%Y-%m-%d %H:%M}"
