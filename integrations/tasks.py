"""Feed jobs, on the platform side (public schema, ``PlatformTask``): pull the feeds that are due, run
one feed (pulled or pushed), and watch their health. Every feed of every agency: ``unscoped()``."""
from pathlib import Path

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from caravan import leases
from caravan.tenancy.tasks import PlatformTask

from . import services
from .models import Feed, FeedRun


@shared_task(base=PlatformTask, name="integrations.pull_due")
def pull_due() -> int:
    """Every minute: queue a pull of each active pulled feed whose interval has passed."""
    now, queued = timezone.now(), 0
    for feed in services.due_feeds(now):
        # Claimed by moving last_run_at: a slow pull is never queued twice by the next minute's job.
        if Feed.objects.unscoped().filter(pk=feed.pk, last_run_at=feed.last_run_at).update(last_run_at=now) == 1:
            run = services.run_create(feed, None, FeedRun.Trigger.SCHEDULE)
            run_feed.delay(feed.pk, None, FeedRun.Trigger.SCHEDULE, run.pk)
            queued += 1
    return queued


@shared_task(base=PlatformTask, name="integrations.run_feed", acks_late=True)
def run_feed(feed_id: int, path: str | None, trigger: str, run_id: int | None = None) -> dict:
    """Run a feed: the pushed file at ``path``, or a fresh pull, as the queued run ``run_id`` under its
    lease (caravan.leases; a message for a run another worker holds, or that ended, does nothing). Only
    one run of a feed at a time (a row lock): a second message for the same feed waits for the first.
    The inventory writes and the end of the lease commit together: a run taken over writes nothing."""
    if run_id is None:  # a message queued before runs were leased
        run_id = services.run_create(Feed(pk=feed_id), path, trigger).pk
    lease = leases.acquire(services.FEED_RUN, run_id)
    if lease is None:
        return {"run": run_id, "status": "not leased"}
    with lease, transaction.atomic():
        feed = Feed.objects.unscoped().select_for_update().select_related("supplier").filter(pk=feed_id).first()
        run = FeedRun.objects.unscoped().get(pk=run_id)
        if feed is None:
            if path:
                Path(path).unlink(missing_ok=True)
            lease.finish(status=FeedRun.Status.FAILED, finished_at=timezone.now(), error="The feed was deleted.")
            return {"status": "no feed"}
        if path and not Path(path).exists():  # the message went with an earlier attempt's clean-up
            lease.finish(status=FeedRun.Status.FAILED, finished_at=timezone.now(),
                         error="The pushed message was lost before it could be read; ask the supplier to push again.")
            return {"run": run_id, "status": FeedRun.Status.FAILED}
        run = services.run_file(feed, Path(path), trigger=trigger, run=run) if path \
            else services.run_pull(feed, trigger=trigger, run=run)
        lease.finish()
    return {"run": run.pk, "status": run.status, "accepted": run.rows_accepted, "rejected": run.rows_rejected,
            "attempt": lease.attempts}


@shared_task(base=PlatformTask, name="integrations.check_health")
def check_health() -> int:
    return len(services.check_health())


@shared_task(base=PlatformTask, name="integrations.alert_operators", bind=True, max_retries=5, default_retry_delay=300)
def alert_operators(self, feed_ids: list[int]) -> int:
    """E-mail the platform's operators which feeds are failing or stale (in each operator's language)."""
    from accounts.models import User

    from caravan.mail import mail_each

    feeds = list(Feed.objects.unscoped().filter(pk__in=feed_ids).select_related("supplier"))
    try:
        return mail_each(User.objects.filter(is_operator=True, is_active=True),
                         template="integrations/email/feed_alert", context={"feeds": feeds}, agency=None)
    except OSError as exc:
        raise self.retry(exc=exc)


@shared_task(base=PlatformTask, name="integrations.alert_agency_admins", bind=True, max_retries=5, default_retry_delay=300)
def alert_agency_admins(self, agency_id: int, feed_ids: list[int]) -> int:
    """E-mail an agency's admins which of its own feeds are failing or stale: their account with the
    supplier (an expired password, say) is theirs to fix."""
    from django_tenants.utils import tenant_context

    from accounts.models import User
    from accounts.roles import Role
    from caravan.mail import mail_each
    from tenants.models import Agency

    agency = Agency.objects.filter(pk=agency_id).first()
    if agency is None:
        return 0
    feeds = list(Feed.objects.unscoped().filter(pk__in=feed_ids, agency=agency).select_related("supplier"))
    if not feeds:  # none of these feeds is the agency's own: nothing to tell its admins
        return 0
    try:
        with tenant_context(agency):
            return mail_each(User.objects.filter(is_active=True, role=Role.ADMIN),
                             template="integrations/email/feed_alert", context={"feeds": feeds}, agency=agency)
    except OSError as exc:
        raise self.retry(exc=exc)
