"""Queue periodic agency work only where work is due.

One row per agency and job (``AgencyJob``) holds when that job next has work. The rule:

- **Claim** (platform side, ``caravan.fan_out``): one statement takes every live agency whose
  ``due_at`` has come (a missing row counts as due now), moves its ``due_at`` to the end of a
  lease, and returns those agencies; only they get the task. Two beats or workers claiming at once
  never queue twice: the upsert re-checks ``due_at`` on the locked row.
- **Record** (the job, in the agency): ``with run(job) as r: …; r.next_at = <from its data>``,
  which ``caravan.tenancy.tasks.agency_job(job, next_due=…)`` does around every periodic task. On
  a clean finish ``due_at`` becomes that time, never later than ``JOBS[job].every`` from now (the
  safety net: a missed hook delays work at most that long). A job that fails records nothing, so
  it is queued again when its lease ends.
- **Pull** (services that create work): ``due(job, at)`` on commit makes ``due_at`` at most ``at``.
  New work that lands while a run is in progress is never lost: the run then keeps the earlier of
  its own answer and what was pulled. The pull after the commit is committed asynchronously
  (``synchronous_commit`` off for its own statement): the work it points at is already durable, and
  a pull lost to a server crash in the fraction of a second before the WAL writer flushes it delays
  that work by at most the job's safety net, while waiting for a second flush cost every lead taken
  in (issue 22) as much as the rest of its statements together.
"""
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db import connection, transaction
from django.utils import timezone

from .models import AgencyJob


@dataclass(frozen=True)
class Job:
    every: timedelta  # the safety net: run at least this often even when nothing pulled it
    lease: timedelta = timedelta(minutes=15)  # a claimed run not recorded by then is queued again


# Minute jobs compute their next due time from their data; hourly ones from the agency's local
# clock; the nightly maintenance jobs run once per beat (every < 1 day so each night's beat finds them).
NIGHTLY = Job(every=timedelta(hours=20))
JOBS: dict[str, Job] = {
    "campaigns.tick": Job(every=timedelta(hours=1), lease=timedelta(minutes=10)),
    # Long jobs' leases (caravan.leases): looked at when the earliest lease of the agency runs out.
    "leases.watchdog": Job(every=timedelta(hours=6), lease=timedelta(minutes=5)),
    "pipeline.send_task_reminders": Job(every=timedelta(hours=1)),
    "care.escalate_complaints": Job(every=timedelta(hours=1)),
    "tiers.check_clocks": Job(every=timedelta(hours=1)),
    "tiers.assign_nightly": Job(every=timedelta(days=1), lease=timedelta(hours=1)),
    "loyalty.greetings": Job(every=timedelta(days=1), lease=timedelta(hours=1)),
    "care.after_trip": Job(every=timedelta(days=1), lease=timedelta(hours=1)),
    "accounts.clear_expired_sessions": NIGHTLY,
    "crm.forget_old_import_files": NIGHTLY,
    "visits.generate_slots": NIGHTLY,
    "privacy.prune_access_log": NIGHTLY,
    # Due when the first document or inactive customer comes due (crm.retention.services.retention_next_due).
    "retention.run": Job(every=timedelta(days=1), lease=timedelta(hours=1)),
    "value.compute": NIGHTLY,
}
DEFAULT = Job(every=timedelta(hours=1))


def job_for(name: str) -> Job:
    return JOBS.get(name, DEFAULT)


_TABLE = AgencyJob._meta.db_table

# Every live agency (as Agency.objects.live()) whose due time has come, or that has no row yet,
# claimed for the lease and returned with its agency row, in one statement.
_CLAIM_SQL = f"""
WITH claimed AS (
    INSERT INTO {_TABLE} AS j (agency_id, job, due_at, claimed_at)
    SELECT a.id, %(job)s, %(lease_end)s, %(now)s
    FROM tenants_agency a
    LEFT JOIN {_TABLE} d ON d.agency_id = a.id AND d.job = %(job)s
    WHERE a.status = ANY(%(live)s) AND a.schema_name <> %(public)s AND (d.id IS NULL OR d.due_at <= %(now)s)
    ON CONFLICT (agency_id, job) DO UPDATE SET due_at = EXCLUDED.due_at, claimed_at = EXCLUDED.claimed_at
        WHERE j.due_at <= %(now)s
    RETURNING j.agency_id)
SELECT a.* FROM tenants_agency a JOIN claimed ON claimed.agency_id = a.id ORDER BY a.id"""

_PULL_SQL = f"""
INSERT INTO {_TABLE} AS j (agency_id, job, due_at, pulled_at) VALUES (%(agency)s, %(job)s, %(at)s, %(now)s)
ON CONFLICT (agency_id, job) DO UPDATE SET due_at = least(j.due_at, EXCLUDED.due_at), pulled_at = EXCLUDED.pulled_at"""

# Pulled while this run was in progress: keep the earlier of the pull and this run's answer.
_RECORD_SQL = f"""
INSERT INTO {_TABLE} AS j (agency_id, job, due_at, ran_at) VALUES (%(agency)s, %(job)s, %(next)s, %(now)s)
ON CONFLICT (agency_id, job) DO UPDATE SET ran_at = EXCLUDED.ran_at,
    due_at = CASE WHEN j.pulled_at >= %(started)s THEN least(j.due_at, EXCLUDED.due_at) ELSE EXCLUDED.due_at END"""


def claim_due(job: str, *, now: datetime | None = None) -> list:
    """Platform side: the live agencies where ``job`` is due, each claimed for the job's lease."""
    from tenants.models import Agency
    from django_tenants.utils import get_public_schema_name

    now = now or timezone.now()
    params = {"job": job, "now": now, "lease_end": now + job_for(job).lease,
              "live": [str(s) for s in Agency.LIVE_STATUSES], "public": get_public_schema_name()}
    with transaction.atomic():
        return list(Agency.objects.raw(_CLAIM_SQL, params))


def due(job: str, at: datetime | None = None) -> None:
    """Work for ``job`` in the active agency at ``at`` (default now): once the surrounding
    transaction commits, the agency's due time for it becomes at most ``at``. Call it from the
    service that creates the work."""
    agency_id = _agency_id()
    if agency_id is None:
        return  # the platform side or the template: no agency job runs there
    at = at or timezone.now()
    transaction.on_commit(lambda: _pull(agency_id, job, at, flushed=False))


def pull(job: str, at: datetime) -> None:
    """As :func:`due`, but in the caller's transaction (rolled back with it); for callers that must
    not add an on-commit callback."""
    agency_id = _agency_id()
    if agency_id is not None:
        _pull(agency_id, job, at)


# In the same message as the pull: its own implicit transaction commits without waiting for the flush.
_UNFLUSHED = "SET LOCAL synchronous_commit TO off; "


def _pull(agency_id: int, job: str, at: datetime, *, flushed: bool = True) -> None:
    """``flushed=False``: after the commit of the work (an on-commit callback, so in autocommit, where
    ``SET LOCAL`` covers this statement alone), without waiting for the WAL flush."""
    unflushed = not flushed and connection.get_autocommit() and not connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute((_UNFLUSHED if unflushed else "") + _PULL_SQL,
                       {"agency": agency_id, "job": job, "at": at, "now": timezone.now()})


class _Run:
    next_at: datetime | None = None


@contextmanager
def run(job: str) -> Iterator[_Run]:
    """Wrap a periodic job's body; set ``.next_at`` to when its data next needs it (None: nothing
    known, the safety net decides). Recorded only if the body finishes without an exception."""
    started = timezone.now()
    result = _Run()
    yield result
    agency_id = _agency_id()
    if agency_id is None:
        return
    now = timezone.now()
    latest = now + job_for(job).every
    next_at = min(result.next_at, latest) if result.next_at else latest
    with connection.cursor() as cursor:
        cursor.execute(_RECORD_SQL, {"agency": agency_id, "job": job, "next": next_at, "now": now, "started": started})


def next_local(agency, at: time, *, now: datetime | None = None) -> datetime:
    """The next moment after ``now`` when the agency's clock (its time zone) shows ``at``."""
    import zoneinfo

    now = now or timezone.now()
    zone = zoneinfo.ZoneInfo(agency.time_zone)
    local = now.astimezone(zone)
    candidate = datetime.combine(local.date(), at, tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=zone)
    return candidate


def _agency_id() -> int | None:
    tenant = getattr(connection, "tenant", None)
    if tenant is None or getattr(tenant, "pk", None) is None or getattr(tenant, "is_platform", True):
        return None
    return tenant.pk
