"""Background work for customers: the import (R-CUST-8)."""
import logging

from celery import shared_task
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy

from caravan.tenancy import agency_writable, require_agency
from caravan.tenancy.tasks import AgencyTask, agency_job

from . import imports
from .models import ImportJob

log = logging.getLogger(__name__)
READ_ONLY_MESSAGE = gettext_lazy("Not imported: the agency became read-only (suspended or cancelled) before the "
                                 "import ran. Nothing was written; import the file again once the agency is active.")
_PROGRESS = ["status", "total_rows", "processed_rows", "created_count", "updated_count", "error_count", "errors"]


@shared_task(base=AgencyTask, name="crm.import_customers")
def import_customers(job_id: int) -> dict:
    """Run a queued import, saving progress after every batch so the page can show it."""
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    if job.status != ImportJob.Status.RUNNING:
        return {"status": job.status}  # already finished (a redelivered message)
    if not agency_writable():  # suspended after the import was queued: write nothing
        job.status = ImportJob.Status.FAILED
        job.finished_at = timezone.now()
        with translation.override(job.created_by.language or require_agency().language):
            job.errors = [{"row": 0, "field": "", "message": str(READ_ONLY_MESSAGE)}]
        job.error_count = 1
        job.save(update_fields=[*_PROGRESS, "finished_at"])
        return {"status": job.status, "refused": "read-only"}
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


@agency_job("crm.forget_old_import_files")
def forget_old_import_files() -> int:
    """Nightly: uploaded spreadsheets hold personal data; keep them no longer than needed."""
    return imports.forget_old_files()
