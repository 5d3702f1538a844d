"""Leases for long jobs: a job whose worker dies is resumed (or given up with a reason) by a watchdog.

Imports, customer exports, agency exports, feed runs and tier recomputes are rows (an "import job",
a "feed run") worked on by one Celery task. The row carries a lease (:class:`Leased`):

- **offer**: starting the job sets ``lease_owner = ''`` and ``lease_until`` = now + ``JOB_LEASE_SECONDS``:
  a worker must pick it up by then.
- **acquire**: the task takes the lease in one ``UPDATE … WHERE`` (free, or expired, and fewer than
  ``JOB_MAX_ATTEMPTS`` attempts so far), counting an attempt. A second message for the same job (a
  redelivery, the watchdog's copy) finds the lease held and does nothing.
- **hold**: while it works, a thread of the worker renews ``lease_until`` every third of the lease on
  a connection of its own, so a slow step (one long ``COPY``) never looks like a dead worker.
- **checkpoint**: work that must happen once commits *with* its checkpoint, in the same transaction,
  through an ``UPDATE … WHERE lease_owner = <me>``: a worker whose lease was taken over finds no row,
  raises :class:`LeaseLost`, and its batch rolls back. Resuming from the last checkpoint therefore
  neither loses nor repeats a row.
- **watchdog**: every minute (``caravan.leases_watchdog`` for platform jobs; ``leases.watchdog``
  fanned out to the agencies where a lease is due to run out, see ``tenants.jobs``) an expired lease
  is given back and the job's task queued again, to resume from its checkpoint; after
  ``JOB_MAX_ATTEMPTS`` attempts the job fails with a reason (``failure``) its page and API show.

A job kind is registered once (:func:`register`) with the task that resumes it and the fields that
mark it failed. Campaign sending predates this and leases per recipient row (``crm.campaigns.sending``).
"""
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.db import connection, connections, models, transaction
from django.db.models import F, Min, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

log = logging.getLogger(__name__)
WATCHDOG = "leases.watchdog"  # the agency job (tenants.jobs) that checks an agency's leases


class LeaseLost(Exception):
    """Another worker took this job over (our lease ran out): stop without writing anything more."""


class Leased(models.Model):
    """Fields every leased job row has. ``failure`` is why the job was given up, in words for its user."""

    # Database defaults: the release before leases still inserts these rows (expand, then contract).
    lease_owner = models.CharField(max_length=120, blank=True, default="", db_default="", editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(default=0, db_default=0, editable=False)
    checkpoint = models.JSONField(default=dict, db_default=models.Value({}, output_field=models.JSONField()),
                                  blank=True, editable=False)
    failure = models.TextField(blank=True, default="", db_default="", editable=False)

    class Meta:
        abstract = True


@dataclass(frozen=True)
class Kind:
    name: str
    model: str  # "app_label.ModelName"
    active: dict  # filter of the rows in flight, e.g. {"status": "running"}
    resume: Callable[[object], None]  # queue the job's task again for this primary key (in the job's schema)
    failed: Callable[[str], dict]  # fields that mark the job failed, given the reason
    public: bool = False  # a platform (public schema) job, else a job in each agency's schema
    extra: dict = field(default_factory=dict)

    @property
    def rows(self):
        return apps.get_model(self.model)._base_manager  # unscoped: the watchdog sees every row of the schema


_KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    _KINDS[kind.name] = kind
    return kind


def kinds(*, public: bool) -> list[Kind]:
    return [k for k in _KINDS.values() if k.public == public]


def lease_length() -> timedelta:
    return timedelta(seconds=settings.JOB_LEASE_SECONDS)


def offered(*, now: datetime | None = None) -> dict:
    """Fields for the statement that starts a job (``.update(status=…, **offered())``): a worker must
    take it within a lease, else the watchdog queues it again. Call :func:`watch` after."""
    now = now or timezone.now()
    return {"lease_owner": "", "lease_until": now + lease_length(), "attempts": 0, "checkpoint": {}, "failure": ""}


def watch(kind: Kind, at: datetime | None = None) -> None:
    """Make sure the watchdog looks at this agency's jobs by ``at`` (default: one lease from now)."""
    if kind.public:
        return  # the platform watchdog runs every minute
    from tenants.jobs import services as agency_jobs

    agency_jobs.pull(WATCHDOG, (at or timezone.now() + lease_length()) + timedelta(seconds=1))


def _owner() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class Lease:
    """The lease a worker holds on one job (see the module's docstring). Use as a context manager."""

    def __init__(self, kind: Kind, pk, owner: str, attempts: int):
        self.kind, self.pk, self.owner, self.attempts = kind, pk, owner, attempts
        model = apps.get_model(kind.model)
        schema = "public" if kind.public else connection.schema_name
        self._table = f"{connection.ops.quote_name(schema)}.{connection.ops.quote_name(model._meta.db_table)}"
        self._pk_column = connection.ops.quote_name(model._meta.pk.column)
        self._stop = threading.Event()
        self._thread = None

    @property
    def resumed(self) -> bool:
        return self.attempts > 1

    def _mine(self):
        return self.kind.rows.filter(pk=self.pk, lease_owner=self.owner)

    def checkpoint(self, **fields) -> None:
        """Record progress (and renew the lease) in the caller's transaction; raises LeaseLost when the
        job is no longer ours, so the caller's transaction rolls back."""
        if not self._mine().update(lease_until=timezone.now() + lease_length(), **fields):
            raise LeaseLost(f"{self.kind.name} {self.pk}")

    def finish(self, **fields) -> None:
        """Give the lease up with the job's final fields (status done or failed); LeaseLost if not ours."""
        if not self._mine().update(lease_owner="", lease_until=None, **fields):
            raise LeaseLost(f"{self.kind.name} {self.pk}")

    def beat(self) -> bool:
        """Renew the lease on a connection of this thread (so it is seen while the job's own transaction
        is open). Skips a row the job itself has locked: its checkpoint renews it then."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {self._table} SET lease_until = %s WHERE {self._pk_column} = ANY(ARRAY(SELECT {self._pk_column} "
                f"FROM {self._table} WHERE {self._pk_column} = %s AND lease_owner = %s FOR UPDATE SKIP LOCKED))",
                [timezone.now() + lease_length(), self.pk, self.owner])
            return cursor.rowcount > 0

    def _beating(self) -> None:
        interval = max(lease_length().total_seconds() / 3, 0.2)
        try:
            while not self._stop.wait(interval):
                try:
                    with transaction.atomic():
                        self.beat()
                except Exception:  # noqa: BLE001 — a missed beat is retried; the checkpoint fences anyway
                    log.warning("Heartbeat of %s %s failed", self.kind.name, self.pk, exc_info=True)
        finally:
            connections.close_all()  # this thread's own connection

    def __enter__(self) -> "Lease":
        self._thread = threading.Thread(target=self._beating, name=f"lease-{self.kind.name}-{self.pk}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def acquire(kind: Kind, pk) -> Lease | None:
    """Take the job's lease if it is free (offered or expired) and attempts are left; None otherwise
    (another worker holds it, or the job is finished, failed or gone)."""
    now = timezone.now()
    owner = _owner()
    taken = kind.rows.filter(Q(lease_owner="") | Q(lease_until__lt=now) | Q(lease_until__isnull=True),
                             pk=pk, attempts__lt=settings.JOB_MAX_ATTEMPTS, **kind.active).update(
        lease_owner=owner, lease_until=now + lease_length(), attempts=F("attempts") + 1)
    if not taken:
        return None
    attempts = kind.rows.filter(pk=pk).values_list("attempts", flat=True).first() or 1
    watch(kind)
    if attempts > 1:
        log.info("Resuming %s %s (attempt %s)", kind.name, pk, attempts)
    return Lease(kind, pk, owner, attempts)


def reason_given_up() -> str:
    return _("The job was interrupted %(count)s times (its worker stopped each time) and has been given up. "
             "Start it again; if it keeps stopping, contact support.") % {"count": settings.JOB_MAX_ATTEMPTS}


def revive(kind: Kind, pk, *, now: datetime | None = None) -> str | None:
    """One job whose lease ran out: queue it again to resume ("resumed"), or fail it with a reason
    after ``JOB_MAX_ATTEMPTS`` ("failed"). None when its lease is still live (or it is not in flight)."""
    now = now or timezone.now()
    with transaction.atomic():
        row = (kind.rows.select_for_update(skip_locked=True)
               .filter(pk=pk, lease_until__lt=now, **kind.active).values("attempts").first())
        if row is None:
            return None
        if row["attempts"] >= settings.JOB_MAX_ATTEMPTS:
            with translation.override(_language(kind)):
                reason = reason_given_up()
            kind.rows.filter(pk=pk).update(lease_owner="", lease_until=None, failure=reason, **kind.failed(reason))
            log.warning("Gave up %s %s after %s attempts", kind.name, pk, row["attempts"])
            return "failed"
        until = now + lease_length()
        kind.rows.filter(pk=pk).update(lease_owner="", lease_until=until)
        watch(kind, until)
        transaction.on_commit(lambda: kind.resume(pk))
        log.warning("Lease of %s %s ran out; queued to resume (attempt %s next)", kind.name, pk, row["attempts"] + 1)
        return "resumed"


def _language(kind: Kind) -> str:
    """The reason is written in the agency's language (a platform job's: the platform's)."""
    from .tenancy import current_agency

    agency = None if kind.public else current_agency()
    return getattr(agency, "language", "") or settings.LANGUAGE_CODE


def stale(kind: Kind, job, *, now: datetime | None = None) -> bool:
    """Is this in-flight job's lease over (its worker died, or its message was lost)?"""
    until = getattr(job, "lease_until", None)
    return until is not None and until < (now or timezone.now())


def watchdog(*, public: bool, now: datetime | None = None) -> dict:
    """Revive every expired lease of the active schema's kinds (public: platform jobs; else this
    agency's). Returns counts."""
    now = now or timezone.now()
    counts = {"resumed": 0, "failed": 0}
    for kind in kinds(public=public):
        for pk in kind.rows.filter(lease_until__lt=now, **kind.active).values_list("pk", flat=True):
            outcome = revive(kind, pk, now=now)
            if outcome:
                counts[outcome] += 1
    return counts


def next_due() -> datetime | None:
    """When this agency's earliest lease runs out (the watchdog's next look); None: no job in flight."""
    times = [kind.rows.filter(**kind.active).aggregate(at=Min("lease_until"))["at"] for kind in kinds(public=False)]
    times = [t for t in times if t]
    return min(times) + timedelta(seconds=1) if times else None
