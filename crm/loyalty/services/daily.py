"""The daily care job: checked hourly, it does the day's work once, from the agency's greeting hour
(08:00 in its own time zone by default). Every step is idempotent, so a run that fails half-way is
simply done again at the next check; e-mails that could not be sent are queued again at every check."""
from datetime import datetime, time

from django.db.models import Min
from django.utils import timezone

from caravan.tenancy import require_agency
from tenants.jobs import services as agency_jobs

from ..models import LoyaltySettings
from .greetings import STUCK_AFTER, greetings_make, greetings_queue, pending_greetings
from .referrals import referrals_qualify
from .suggestions import suggestions_make
from .winback import win_back_identify, won_back_sweep


def daily_due(*, now: datetime | None = None) -> bool:
    """From the greeting hour in the agency's time zone, once a day (a missed day is caught up)."""
    now = now or timezone.now()
    rules = LoyaltySettings.load()
    with timezone.override(require_agency().time_zone):
        local = timezone.localtime(now)
    return local.hour >= rules.greeting_hour and (rules.last_run_on is None or rules.last_run_on < local.date())


def daily_run(*, now: datetime | None = None, force: bool = False) -> dict:
    """Greetings, holiday suggestions, win-back and referrals for today, then the greeting e-mails
    are queued in batches. Without ``force`` only when due (see ``daily_due``); e-mails left unsent
    for an hour are queued again at every check."""
    now = now or timezone.now()
    counts: dict = {}
    made_since = None
    if force or daily_due(now=now):
        made_since = now
        with timezone.override(require_agency().time_zone):
            today = timezone.localdate(now)
        counts["greetings"] = greetings_make(today=today, now=now)
        counts["suggestions"] = suggestions_make(today=today, now=now)
        counts["won_back"] = won_back_sweep(now=now)
        counts["win_back"] = win_back_identify(today=today, now=now)
        counts["referrals"] = referrals_qualify(now=now)
        LoyaltySettings.load()
        LoyaltySettings.objects.filter(pk=1).update(last_run_on=today, last_run_at=now)
    counts["queued"] = greetings_queue(made_since=made_since, now=now)
    return counts


def daily_next_due(*, now: datetime | None = None) -> datetime:
    """Next due at the greeting hour on the agency's clock, or sooner when greeting e-mails still
    unsent must be queued again (an hour after they were made)."""
    now = now or timezone.now()
    at = agency_jobs.next_local(require_agency(), time(LoyaltySettings.load().greeting_hour, 0), now=now)
    oldest = pending_greetings(now=now).aggregate(at=Min("created_at"))["at"]
    return min(at, max(oldest + STUCK_AFTER, now)) if oldest else at
