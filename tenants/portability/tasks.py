"""Platform-side tasks (public schema, ``PlatformTask``) for exports, restores and deletions."""
from celery import shared_task

from caravan.tenancy.tasks import PlatformTask


@shared_task(base=PlatformTask, name="portability.export", acks_late=True)
def export_agency(export_id: str) -> str:
    from .services import export_run

    export = export_run(export_id)
    return export.status if export else "missing"


@shared_task(base=PlatformTask, name="portability.restore", acks_late=True)
def restore_agency(job_id: int, name: str = "", trust_unsigned: bool = False) -> str:
    from .services import restore_run

    job = restore_run(job_id, name, trust_unsigned)
    return job.status if job else "missing"


@shared_task(base=PlatformTask, name="portability.expire_exports")
def expire_exports() -> int:
    from .services import expire_exports as expire

    return expire()


@shared_task(base=PlatformTask, name="portability.purge_due_agencies")
def purge_due_agencies() -> list[str]:
    from .services import purge_due

    return purge_due()


@shared_task(base=PlatformTask, name="portability.deletion_notice", autoretry_for=(OSError,), retry_backoff=60, max_retries=5)
def deletion_notice(agency_id: int) -> int:
    from tenants.models import Agency

    from .services import deletion_notice as notice

    agency = Agency.objects.filter(pk=agency_id).first()
    return notice(agency) if agency else 0
