"""Background work for the destination knowledge base: reading an uploaded file of articles (issue 18: never
in a web process)."""
import logging
from pathlib import Path

from celery import shared_task
from django.core.exceptions import ValidationError
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from caravan import unpack
from caravan.tenancy import agency_writable, require_agency
from caravan.tenancy.tasks import AgencyTask

from . import imports
from .models import ArticleImport

log = logging.getLogger(__name__)


@shared_task(base=AgencyTask, name="crm.import_articles", soft_time_limit=imports.TIME_LIMIT,
             time_limit=imports.TIME_LIMIT + 30)
def import_articles(import_id: int) -> dict:
    """Read a queued :class:`ArticleImport`'s file and save its articles, all or nothing, under caravan.unpack's
    memory limit; keep the report (in the importer's language) on the import and remove the file. A message
    for an import another worker took, or that is finished, does nothing."""
    taken = ArticleImport.objects.filter(pk=import_id, status=ArticleImport.Status.QUEUED).update(
        status=ArticleImport.Status.RUNNING, started_at=timezone.now())
    if not taken:
        return {"status": "missing or taken", "taken": False}
    job = ArticleImport.objects.select_related("created_by").get(pk=import_id)
    language = job.language or (job.created_by.language if job.created_by else "") or require_agency().language
    with translation.override(language):
        try:
            if not agency_writable():  # suspended after the upload: write nothing
                report = imports.failed_report(job.original_name, _(
                    "Not imported: the agency became read-only (suspended or cancelled) before the import ran. "
                    "Nothing was written; import the file again once the agency is active."))
            else:
                with unpack.memory_limit():
                    report = imports.import_file(actor=job.created_by, path=Path(job.file.path),
                                                 name=job.original_name)
        except MemoryError:
            report = imports.failed_report(job.original_name, unpack.memory_message())
        except ValidationError as exc:  # the file as a whole: unreadable, or a zip past its bounds
            report = imports.failed_report(job.original_name, " ".join(exc.messages))
        except Exception:
            log.exception("Article import %s failed", job.pk)
            report = imports.failed_report(job.original_name, _("The import stopped on an unexpected error; "
                                                                "nothing was saved. Try again or tell support."))
            _finish(job, report)
            raise
    _finish(job, report)
    return {"status": job.status, "created": report["created"], "updated": report["updated"],
            "errors": len(report["errors"])}


def _finish(job: ArticleImport, report: dict) -> None:
    job.report = report
    job.status = ArticleImport.Status.DONE if report.get("saved") else ArticleImport.Status.FAILED
    job.finished_at = timezone.now()
    if job.file:
        job.file.delete(save=False)  # read once; the articles (or the report) are what is kept
    job.save(update_fields=["report", "status", "finished_at", "file"])
