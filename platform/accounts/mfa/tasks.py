from celery import shared_task

from caravan.tenancy import require_agency
from caravan.tenancy.tasks import AgencyTask, PlatformTask

from . import services


@shared_task(base=AgencyTask, name="mfa.new_device_mail", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def new_device_mail(record_id: int) -> bool:
    """Tell a staff member about a sign-in from a browser they had not used (once per sign-in)."""
    return services.new_device_mail_send(record_id=record_id, agency=require_agency())


@shared_task(base=PlatformTask, name="mfa.new_device_mail_platform", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def new_device_mail_platform(record_id: int) -> bool:
    """The same for an operator (public schema)."""
    return services.new_device_mail_send(record_id=record_id, agency=None)
