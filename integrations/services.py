"""Supplier feeds: register and change them (operators for every feed, an agency's admins for its
own), keep their credentials in the owner's schema, rotate their secrets, pull, receive pushes, run,
and watch their health. Every run goes through ``ingest.ingest``."""
import base64
import logging
import secrets
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

import sentry_sdk
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name, schema_context

from caravan import leases, outbound
from caravan.signatures import BadSignature, Verifier
from caravan.tenancy.scoping import shared_q
from crm.customers import crypto
from tenants.models import Agency

from .connectors import CONNECTORS
from .credentials.models import FeedCredential
from .ingest import ingest
from .models import Feed, FeedRun, FlightOffer, HotelRate, QuarantinedRecord

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024


class PushRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# --- feeds ----------------------------------------------------------------------------------------

@contextmanager
def _owner_schema(feed: Feed):
    """The schema that holds the feed's credentials: the agency's own for its feeds, else public."""
    with schema_context(feed.agency.schema_name if feed.agency_id else get_public_schema_name()):
        yield


def credential(feed: Feed) -> FeedCredential:
    """The feed's credentials (unsaved and empty when it has none yet), read in the owner's schema."""
    with _owner_schema(feed):
        return FeedCredential.objects.filter(feed_id=feed.pk).first() or FeedCredential(feed_id=feed.pk)


def _credential_update(feed: Feed, **fields) -> None:
    with _owner_schema(feed):
        FeedCredential.objects.update_or_create(feed_id=feed.pk, defaults=fields)


def feeds_available(agency: Agency, *, field: str = "name") -> None:
    """Before an agency connects another feed of its own: refuse past its plan's number of feeds."""
    from billing.services import plan_of

    plan = plan_of(agency)
    if plan is not None and plan.supplier_feeds is not None and \
            Feed.objects.unscoped().filter(agency=agency, active=True).count() >= plan.supplier_feeds:
        raise ValidationError({field: [_("Your %(plan)s plan includes %(n)s supplier feeds of your own and they are "
                                         "all in use. Pause or remove one, or ask your admin for a larger plan.")
                                       % {"plan": plan.name, "n": plan.supplier_feeds}]})


def feed_save(feed: Feed, *, username: str | None = None, secret: str | None = None) -> Feed:
    """Check and save a feed. ``username`` and ``secret`` (the pull password or token) replace the
    stored ones when given; they are kept, the secret encrypted, in the owner's schema. A new feed
    gets its push signing key (``push_secret`` shows it)."""
    errors = {}
    before = Feed.objects.unscoped().filter(pk=feed.pk).values("agency_id", "active").first() if feed.pk else None
    stored = credential(feed) if feed.pk else FeedCredential()
    connector = CONNECTORS.get(feed.connector)
    if connector is None:
        errors["connector"] = [_("Choose a format.")]
    elif connector.kind != feed.supplier.kind:
        errors["connector"] = [_("This format carries %(kind)s; the supplier's inventory is %(supplier)s.")
                               % {"kind": connector.kind, "supplier": feed.supplier.get_kind_display()}]
    if feed.mode == Feed.Mode.PULL and not feed.endpoint:
        errors["endpoint"] = [_("A pulled feed needs the address to fetch.")]
    if feed.endpoint:
        try:
            outbound.check_url(feed.endpoint)
        except outbound.OutboundRefused as exc:
            errors["endpoint"] = [str(exc)]
    if feed.auth != Feed.Auth.NONE and not (secret or stored.secret_encrypted):
        errors["secret"] = [_("Give the password or token for this authentication.")]
    if feed.auth == Feed.Auth.BASIC and not (username if username is not None else stored.username):
        errors["username"] = [_("Give the user name.")]
    if not 1 <= feed.schedule_minutes <= 7 * 24 * 60:
        errors["schedule_minutes"] = [_("Pull between every minute and once a week.")]
    if before and before["agency_id"] != feed.agency_id:
        errors["agency"] = [_("A feed stays with the agency it was made for; make a new feed instead.")]
    if errors:
        raise ValidationError(errors)
    fields = {}
    if username is not None:
        fields["username"] = username
    if secret:
        fields["secret_encrypted"] = crypto.encrypt(secret)
    if not stored.push_secret_encrypted:
        fields["push_secret_encrypted"] = crypto.encrypt(secrets.token_urlsafe(32))
    with transaction.atomic():
        if feed.agency_id and feed.active and not (before and before["active"]):
            # One agency's feeds are counted and added one at a time: two admins at once cannot pass the limit.
            Agency.objects.select_for_update().filter(pk=feed.agency_id).first()
            feeds_available(feed.agency)
        feed.save()
        if fields:
            _credential_update(feed, **fields)
    return feed


def feed_delete(feed: Feed) -> None:
    """Remove a feed with its runs, its inventory and its credentials, in one transaction: one
    set-based ``DELETE … WHERE feed`` per table, children before parents, so no row is loaded into
    memory however many rates the feed holds. (Every table pointing at feeds is listed here;
    tests/test_bulk_delete.py fails when one is added and not here.)"""
    with transaction.atomic():
        with _owner_schema(feed):
            FeedCredential.objects.filter(feed_id=feed.pk).delete()
        for rows in (QuarantinedRecord.objects.unscoped().filter(run__feed_id=feed.pk),
                     HotelRate.objects.unscoped().filter(feed_id=feed.pk),
                     FlightOffer.objects.unscoped().filter(feed_id=feed.pk),
                     FeedRun.objects.unscoped().filter(feed_id=feed.pk), Feed.objects.unscoped().filter(pk=feed.pk)):
            rows._raw_delete(rows.db)


def push_secret_rotate(feed: Feed) -> str:
    """A new signing key for pushes; the old one stops working at once. Returned once, shown once."""
    secret = secrets.token_urlsafe(32)
    _credential_update(feed, push_secret_encrypted=crypto.encrypt(secret))
    return secret


def push_secret(feed: Feed) -> str:
    encrypted = credential(feed).push_secret_encrypted
    return crypto.decrypt(encrypted) if encrypted else ""


def push_url(feed: Feed) -> str:
    """Where the supplier pushes: always the platform domain, never an agency's host."""
    port = f":{settings.PLATFORM_PORT}" if settings.PLATFORM_PORT else ""
    return f"{settings.PLATFORM_SCHEME}://{settings.PLATFORM_DOMAIN}{port}/integrations/push/{feed.push_key}/"


def _spool(feed: Feed) -> Path:
    folder = Path(settings.FEED_SPOOL_DIR) / str(feed.pk)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{uuid.uuid4().hex}.msg"


class TooLarge(Exception):
    pass


class FetchFailed(Exception):
    pass


def _save(feed: Feed, read, on_chunk=None) -> Path:
    """Stream ``read(n)`` into a new spool file, refusing more than ``FEED_MAX_BYTES``; nothing is left
    behind when it fails."""
    path = _spool(feed)
    size = 0
    try:
        with open(path, "wb") as out:
            while chunk := read(CHUNK):
                size += len(chunk)
                if size > settings.FEED_MAX_BYTES:
                    raise TooLarge(f"The message is larger than {settings.FEED_MAX_BYTES:,} bytes (FEED_MAX_BYTES).")
                if on_chunk is not None:
                    on_chunk(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


# --- pull -----------------------------------------------------------------------------------------

def fetch(feed: Feed) -> Path:
    """Download the feed's message to the spool, streaming, refusing more than ``FEED_MAX_BYTES``."""
    request = urllib.request.Request(feed.endpoint, headers={"Accept": CONNECTORS[feed.connector].content_type,
                                                             "User-Agent": "Caravan feeds/1",
                                                             # Inflated, within bounds, when read (ingest).
                                                             "Accept-Encoding": "gzip"})
    if feed.auth != Feed.Auth.NONE:
        stored = credential(feed)
        secret = crypto.decrypt(stored.secret_encrypted)
        if feed.auth == Feed.Auth.BASIC:
            token = base64.b64encode(f"{stored.username}:{secret}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        else:
            request.add_header("Authorization", f"Bearer {secret}")
    try:
        # Public addresses only, checked at connect time and on every redirect (caravan/outbound.py).
        with outbound.opener().open(request, timeout=settings.FEED_FETCH_TIMEOUT) as response:
            return _save(feed, response.read)
    except TooLarge as exc:
        raise FetchFailed(str(exc)) from None
    except urllib.error.HTTPError as exc:
        raise FetchFailed(f"The supplier answered HTTP {exc.code}.") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchFailed(f"The supplier could not be reached: {reason}.") from None


def run_pull(feed: Feed, *, trigger: str = FeedRun.Trigger.SCHEDULE, run: FeedRun | None = None) -> FeedRun:
    """Fetch and ingest now (as ``run``, a queued run, or a new one). A failed fetch is recorded as a
    failed run (the inventory stays)."""
    try:
        path = fetch(feed)
    except FetchFailed as exc:
        now = timezone.now()
        if run is None:
            run = FeedRun(feed=feed, trigger=trigger)
        run.status, run.finished_at, run.error = FeedRun.Status.FAILED, now, str(exc)[:2000]
        run.save()
        Feed.objects.unscoped().filter(pk=feed.pk).update(last_run_at=now, health=Feed.Health.FAILING)
        return run
    return run_file(feed, path, trigger=trigger, run=run)


def run_file(feed: Feed, path: Path, *, trigger: str, run: FeedRun | None = None) -> FeedRun:
    try:
        return ingest(feed, path, trigger=trigger, run=run)
    finally:
        path.unlink(missing_ok=True)  # supplier messages are not kept once read


def due_feeds(now=None) -> list[Feed]:
    now = now or timezone.now()
    live = shared_q(Feed) | Q(agency__status__in=Agency.LIVE_STATUSES)  # a suspended agency's feeds wait
    return [feed for feed in Feed.objects.unscoped().filter(live, active=True, mode=Feed.Mode.PULL, supplier__active=True)
            .select_related("agency")
            if feed.last_run_at is None or feed.last_run_at + timedelta(minutes=feed.schedule_minutes) <= now]


# --- push -----------------------------------------------------------------------------------------

def push_receive(*, push_key: str, signature: str, body: BinaryIO, length: int | None) -> tuple[Feed, Path]:
    """Store a pushed message, verifying its signature (``caravan.signatures``, with the feed's push
    secret) while it streams to the spool. Returns the feed and the stored file; raises ``PushRefused`` (status, message)."""
    feed = Feed.objects.unscoped().filter(push_key=push_key, mode=Feed.Mode.PUSH, active=True) \
        .select_related("supplier", "agency").first()
    secret = push_secret(feed) if feed is not None else ""
    if not secret:
        raise PushRefused(404, "No such feed.")
    if length is not None and length > settings.FEED_MAX_BYTES:
        raise PushRefused(413, f"The message is larger than {settings.FEED_MAX_BYTES:,} bytes (FEED_MAX_BYTES).")
    try:
        verifier = Verifier(header=signature, secret=secret)
        verifier.check_fresh()  # before reading the body: a stale delivery costs nothing
    except BadSignature as exc:
        raise PushRefused(401, str(exc)) from None
    try:
        path = _save(feed, body.read, verifier.update)
    except TooLarge as exc:
        raise PushRefused(413, str(exc)) from None
    try:
        verifier.check()
    except BadSignature as exc:
        path.unlink(missing_ok=True)
        raise PushRefused(401, str(exc)) from None
    return feed, path


def _queue_run(feed: Feed, path: str | None, trigger: str) -> None:
    """Queue ``integrations.run_feed`` (a ``PlatformTask``: public schema, sent on commit, even when an
    agency's admin asked from the agency's host)."""
    from .tasks import run_feed

    run = run_create(feed, path, trigger)
    run_feed.delay(feed.pk, path, trigger, run.pk)


def run_create(feed: Feed, path: str | None, trigger: str) -> FeedRun:
    """The run a queued message will work on, offered to a worker under a lease (caravan.leases): if
    its worker dies, the watchdog queues it again with the same spool file."""
    with schema_context(get_public_schema_name()):
        return FeedRun.objects.unscoped().create(feed=feed, trigger=trigger, status=FeedRun.Status.RUNNING,
                                                 **{**leases.offered(), "checkpoint": {"path": path or ""}})


def run_resume(run_id: int) -> None:
    from .tasks import run_feed

    with schema_context(get_public_schema_name()):
        run = FeedRun.objects.unscoped().filter(pk=run_id).values("feed_id", "trigger", "checkpoint").first()
    if run:
        run_feed.delay(run["feed_id"], run["checkpoint"].get("path") or None, run["trigger"], run_id)


def _run_failed(reason: str) -> dict:
    return {"status": FeedRun.Status.FAILED, "finished_at": timezone.now(), "error": reason[:2000]}


FEED_RUN = leases.register(leases.Kind(name="integrations.run", model="integrations.FeedRun",
                                       active={"status": "running", "lease_until__isnull": False},
                                       resume=run_resume, failed=_run_failed, public=True))


def queue_file(feed: Feed, path: Path, *, trigger: str) -> None:
    _queue_run(feed, str(path), trigger)


def queue_pull(feed: Feed, *, trigger: str = FeedRun.Trigger.MANUAL) -> None:
    """"Run now" (or the schedule): fetch and run in the background. A pushed feed runs when pushed."""
    if feed.mode != Feed.Mode.PULL:
        raise ValidationError(_("A pushed feed runs when the supplier pushes."))
    _queue_run(feed, None, trigger)


# --- health ---------------------------------------------------------------------------------------

def health_of(feed: Feed, now=None) -> str:
    """New, OK, failing (the last run failed) or stale (no success within ``stale_after_minutes``)."""
    now = now or timezone.now()
    if feed.health == Feed.Health.FAILING:
        return Feed.Health.FAILING
    if now - (feed.last_success_at or feed.created_at) > timedelta(minutes=feed.stale_after_minutes):
        return Feed.Health.STALE
    return Feed.Health.OK if feed.last_success_at else Feed.Health.NEW


def check_health(now=None) -> list[Feed]:
    """Alert operators (e-mail and Sentry), and for an agency's own feed its admins (e-mail), once per
    episode about each active feed that is failing or stale. An episode ends with the next successful run (``ingest`` clears ``alerted_at``)."""
    from accounts.models import User

    now = now or timezone.now()
    alerted = []
    for feed in Feed.objects.unscoped().filter(active=True, alerted_at__isnull=True).select_related("supplier"):
        state = health_of(feed, now)
        if state not in (Feed.Health.FAILING, Feed.Health.STALE):
            continue
        if Feed.objects.unscoped().filter(pk=feed.pk, alerted_at__isnull=True).update(alerted_at=now, health=state) != 1:
            continue  # another worker took it
        alerted.append(feed)
        # Sentry gets the feed's id and state only: never message content.
        sentry_sdk.capture_message(f"Supplier feed {feed.pk} is {state}", level="warning")
        log.warning("Supplier feed %s (%s) is %s", feed.pk, feed.supplier.code, state)
    if alerted:
        from .tasks import alert_agency_admins, alert_operators

        if User.objects.filter(is_operator=True, is_active=True).exists():
            alert_operators.delay([f.pk for f in alerted])
        by_agency: dict[int, list[int]] = {}
        for feed in alerted:
            if feed.agency_id:
                by_agency.setdefault(feed.agency_id, []).append(feed.pk)
        for agency_id, feed_ids in by_agency.items():
            alert_agency_admins.delay(agency_id, feed_ids)
    return alerted
