"""Background work for customers: the import and the large export (R-CUST-8)."""
import logging

from celery import shared_task
from django.core.exceptions import ValidationError
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy

from caravan import leases, unpack
from caravan.tenancy import agency_writable, require_agency
from caravan.tenancy.tasks import AgencyTask, agency_job

from . import exports, imports
from .models import ImportJob

log = logging.getLogger(__name__)
READ_ONLY_MESSAGE = gettext_lazy("Not imported: the agency became read-only (suspended or cancelled) before the "
                                 "import ran. Nothing was written; import the file again once the agency is active.")
_CHECKPOINT = ["total_rows", "processed_rows", "created_count", "updated_count", "error_count", "errors"]
_PROGRESS = ["status", *_CHECKPOINT]
MAX_KEPT = imports.MAX_ERRORS


@shared_task(base=AgencyTask, name="crm.import_customers")
def import_customers(job_id: int) -> dict:
    """Run a queued import under its lease (caravan.leases): each batch commits with its checkpoint, so
    when this worker dies the watchdog queues the job again and the next run goes on after the last
    committed batch. A message for a job whose lease another worker holds, or that is finished, does nothing."""
    lease = leases.acquire(imports.IMPORT, job_id)
    if lease is None:
        job = ImportJob.objects.filter(pk=job_id).first()
        return {"status": job.status if job else "missing", "leased": False}
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    if not agency_writable():  # suspended after the import was queued: write nothing more
        job.status = ImportJob.Status.FAILED
        job.finished_at = timezone.now()
        with translation.override(job.created_by.language or require_agency().language):
            job.errors = [*job.errors, {"row": 0, "field": "", "message": str(READ_ONLY_MESSAGE)}][-MAX_KEPT:]
        job.error_count += 1
        lease.finish(**_fields(job, _PROGRESS), finished_at=job.finished_at)
        return {"status": job.status, "refused": "read-only"}
    language = job.created_by.language or require_agency().language
    with lease:
        try:
            # Row errors are read by the person who imported; the parse is bounded (caravan.unpack, issue 18).
            with translation.override(language), unpack.memory_limit():
                imports.run(job, progress=lambda j: lease.checkpoint(**_fields(j, _CHECKPOINT)))
        except leases.LeaseLost:
            log.warning("Import %s was taken over by another worker; this run stops", job.pk)
            return {"status": "taken over"}
        except (MemoryError, ValidationError) as exc:  # the file: more memory than allowed, or unreadable further on
            with translation.override(language):
                reason = unpack.memory_message() if isinstance(exc, MemoryError) else " ".join(exc.messages)
            log.warning("Import %s stopped: %s", job.pk, reason)
            job.status = ImportJob.Status.FAILED
            job.finished_at = timezone.now()
            lease.finish(**_fields(job, _PROGRESS), finished_at=job.finished_at, failure=reason[:2000])
            return {"status": job.status, "refused": reason}
        except Exception:
            log.exception("Import %s failed", job.pk)
            job.status = ImportJob.Status.FAILED
            job.finished_at = timezone.now()
            lease.finish(**_fields(job, _PROGRESS), finished_at=job.finished_at)
            raise
        job.status = ImportJob.Status.DONE
        job.finished_at = timezone.now()
        lease.finish(**_fields(job, _PROGRESS), finished_at=job.finished_at)
    return {"status": job.status, "created": job.created_count, "updated": job.updated_count,
            "errors": job.error_count, "attempt": lease.attempts}


def _fields(job: ImportJob, names: list[str]) -> dict:
    return {name: getattr(job, name) for name in names}


@shared_task(base=AgencyTask, name="crm.export_customers")
def export_customers(job_id: int) -> dict:
    """Make a large customer export under its lease (``crm.customers.exports.export_run``)."""
    job = exports.export_run(job_id)
    return {"status": job.status, "rows": job.done_rows} if job else {"leased": False}


@agency_job("crm.forget_old_import_files")
def forget_old_import_files() -> int:
    """Nightly: uploaded spreadsheets and customer exports hold personal data; keep them no longer than needed."""
    return imports.forget_old_files() + exports.expire()


@shared_task(base=AgencyTask, name="crm.check_import", soft_time_limit=imports.CHECK_TIME_LIMIT,
             time_limit=imports.CHECK_TIME_LIMIT + 30)
def check_import(job_id: int, token: str) -> dict:
    """Read an uploaded file's headers, and dry-run it when asked (``imports.work``): never in a web
    process, always under caravan.unpack's bounds and memory limit (issue 18)."""
    job = ImportJob.objects.select_related("created_by").filter(pk=job_id).first()
    if job is None:
        return {"status": "missing"}
    language = (imports.state(job).get("task") or {}).get("language") or job.created_by.language \
        or require_agency().language
    with translation.override(language):  # the report is read by the person who asked
        return {"status": imports.work(job, token)}
