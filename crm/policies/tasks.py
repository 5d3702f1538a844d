"""Policy jobs: thin; the services do the work and are idempotent."""
from celery import shared_task

from caravan.tenancy.tasks import AgencyTask

from . import services


@shared_task(base=AgencyTask, name="policies.send_approval_request", autoretry_for=(OSError,), retry_backoff=True,
             max_retries=8)
def send_approval_request(approval_id: int) -> bool:
    """E-mail the approver the signed link to approve or reject; never twice."""
    return services.approval_email_send(approval_id=approval_id)
