"""Background work for customers: the import (R-CUST-8)."""
import logging

from celery import shared_task
from django.utils import timezone, translation

from caravan.tenancy import require_agency
from caravan.tenancy.tasks import AgencyTask

from . import imports
from .models import ImportJob

log = logging.getLogger(__name__)
_PROGRESS = ["status", "total_rows", "processed_rows", "created_count", "updated_count", "error_count", "errors"]


@shared_task(base=AgencyTask, name="crm.import_customers")
def import_customers(job_id: int) -> dict:
    """Run a queued import, saving progress after every batch so the page can show it."""
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    if job.status != ImportJob.Status.RUNNING:
        return {"status": job.status}  # already finished (a redelivered message)
    language = job.created_by.language or require_agency().language
    try:
        with translation.override(language):  # row errors are read by the person who imported
            imports.run(job, progress=lambda j: j.save(update_fields=_PROGRESS))
    except Exception:
        log.exception("Import %s failed", job.pk)
        job.status = ImportJob.Status.FAILED
        job.finished_at = timezone.now()
        job.save(update_fields=[*_PROGRESS, "finished_at"])
        raise
    job.status = ImportJob.Status.DONE
    job.finished_at = timezone.now()
    job.save(update_fields=[*_PROGRESS, "finished_at"])
    return {"status": job.status, "created": job.created_count, "updated": job.updated_count,
            "errors": job.error_count}


@shared_task(base=AgencyTask, name="crm.forget_old_import_files")
def forget_old_import_files() -> int:
    """Nightly: uploaded spreadsheets hold personal data; keep them no longer than needed."""
    return imports.forget_old_files()
