"""Campaign jobs (R-CAMP-2): thin; ``crm.campaigns.sending`` and ``services`` do the work."""
from celery import shared_task

from caravan.tenancy.tasks import AgencyTask, agency_job

from . import sending, services

RETRY_SECONDS = 60


@shared_task(base=AgencyTask, name="campaigns.send")
def send_campaign(campaign_id: int) -> dict:
    """Send a started campaign for up to ``sending.MAX_SECONDS``, then queue the rest as a new run.
    When the SMTP server fails, the run stops and is queued again a minute later (the rows it had
    marked sent are never sent again)."""
    try:
        result = sending.campaign_send(campaign_id=campaign_id)
    except sending.SendInterrupted as exc:
        send_campaign.apply_async((campaign_id,), countdown=RETRY_SECONDS)
        return {"interrupted": str(exc)[:300]}
    if not result["done"]:
        send_campaign.delay(campaign_id)
    return result


@agency_job("campaigns.tick", next_due=services.campaigns_next_due)
def tick() -> dict:
    """Start the scheduled campaigns that are due, resume stalled sends (queued when due, see tenants.jobs)."""
    return services.campaigns_tick()
