"""Sending a started campaign (R-CAMP-2): what the ``campaigns.send`` worker task runs.

``campaign_send`` works through the campaign's pending send-group rows in batches:

1. **Claim** a batch: ``UPDATE … SET claimed_at = now() WHERE id IN (SELECT … FOR UPDATE SKIP
   LOCKED)``, committed at once. Two workers on one campaign take disjoint batches; a claim older
   than ``CLAIM_LEASE`` is a worker that died, and its rows may be claimed again.
2. **Re-check consent** for the batch (``consent.emailable``, one query): someone who unsubscribed,
   bounced or lost their address since the audience was taken is skipped, not mailed.
3. **Send** each message on one SMTP connection per batch, at most ``rate_per_second`` of them a
   second, and **mark the row sent right after the server accepted it** (its own committed UPDATE).
   If the worker dies, the rows it marked are never sent again; the rows it had claimed but not
   marked are sent by the next run. So the window for a double send is one message: the one the
   server accepted in the instant before the worker died, before its mark was written.
   The marks are committed with ``synchronous_commit`` off (this session, this run only): a
   commit is then visible at once and survives the worker, but is flushed to disk a moment later,
   so only a crash of the database server itself could lose the last fraction of a second of
   marks (and re-send those messages). It saves a disk flush per message (~4 ms here).
4. A recipient the server refuses with a 5xx code is a hard bounce (``consent.bounced``: never
   mailed again until they opt in anew); a 4xx refusal fails that row only. Any other SMTP or
   connection error stops the run: the claims not settled are released and ``SendInterrupted`` is
   raised (the task queues itself again a minute later).
5. After each batch, one statement writes the timeline (one outbound e-mail ``Contact`` per sent
   row that has none yet: safe to repeat, so a crash between the send and this step loses nothing).

The run stops after ``max_seconds`` (the task then queues the next run) and closes the campaign
(status *sent*) when no row is pending.
"""
import smtplib
import time
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.translation import gettext as _

from caravan.tenancy import agency_writable, require_agency
from crm.customers.models import Contact, Customer, Email

from . import links, rendering
from .consent import bounced, emailable
from .models import Campaign, Recipient

CLAIM_LEASE = timedelta(minutes=5)
BATCH = 200
MAX_SECONDS = 240  # one task run; the task queues the next one (keeps the worker responsive)
R = Recipient._meta.db_table


class SendInterrupted(Exception):
    """The SMTP server or the connection failed: nothing more can be sent now; try again later."""


class Throttle:
    """At most ``rate`` calls of ``wait()`` a second, without bursts."""

    def __init__(self, rate: int):
        self.interval = 1.0 / max(rate, 1)
        self.next = time.monotonic()

    def wait(self) -> None:
        now = time.monotonic()
        if now < self.next:
            time.sleep(self.next - now)
            now = self.next
        self.next = now + self.interval


# --- personal values ------------------------------------------------------------------------------

_VALUES_SQL = f"""
    SELECT c.id, c.name, c.latin_given, coalesce(nullif(u.full_name, ''), u.email, ''),
           (SELECT t.destination FROM trips_trip t
            WHERE t.customer_id = c.id AND t.status IN ('confirmed', 'completed') AND t.destination <> ''
            ORDER BY t.depart_on DESC NULLS LAST, t.id DESC LIMIT 1)
    FROM {Customer._meta.db_table} c LEFT JOIN accounts_user u ON u.id = c.owner_id
    WHERE c.id = ANY(%s)"""


def personal_values(customer_ids, *, agency=None) -> dict[int, dict]:
    """The personal fields of each customer (``rendering.FIELDS``), in one query."""
    agency = agency or require_agency()
    with connection.cursor() as cursor:
        cursor.execute(_VALUES_SQL, [list(customer_ids)])
        rows = cursor.fetchall()
    return {pk: {"name": name, "first_name": rendering.first_name(name, latin_given or ""),
                 "owner_name": owner or "", "last_destination": destination or "", "agency_name": agency.name}
            for pk, name, latin_given, owner, destination in rows}


def sample_values(*, agency=None) -> dict:
    """Made-up values for a preview when there is no customer to show."""
    agency = agency or require_agency()
    return {"name": "王芳", "first_name": "Fang", "owner_name": _("Your account manager"),
            "last_destination": _("Kyoto"), "agency_name": agency.name}


# --- composing a message --------------------------------------------------------------------------

def frozen_content(template) -> dict:
    """What a campaign stores when it starts: per language the subject, body and the body's links."""
    return {language: {**parts, "links": rendering.template_links(parts["body"])}
            for language, parts in template.content().items()}


@dataclass
class Composer:
    """Builds each recipient's message from a campaign's frozen content (work done once per run)."""

    content: dict
    agency: object
    from_name: str = ""
    reply_to: str = ""
    base: str = field(init=False)
    footers: dict = field(init=False, default_factory=dict)

    def __post_init__(self):
        self.base = self.agency.url("").rstrip("/")
        # The path of each kind of link, with a marker where the token goes (one reverse() per run).
        self.paths = {kind: links.path(kind, "TOKEN").split("TOKEN") for kind in (links.UNSUBSCRIBE, links.OPEN,
                                                                                 links.CLICK)}
        address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or settings.DEFAULT_FROM_EMAIL
        self.from_email = formataddr((self.from_name or self.agency.name, address))
        for language in self.content:
            with translation.override(language):
                self.footers[language] = (
                    _("You receive this e-mail because you agreed to hear from %(agency)s.") % {"agency": self.agency.name},
                    _("Unsubscribe"))

    def language_for(self, language: str) -> str:
        if language in self.content:
            return language
        return self.agency.language if self.agency.language in self.content else next(iter(self.content))

    def url(self, kind: str, recipient_id: int, index: int | None = None) -> str:
        head, tail = self.paths[kind]
        return f"{self.base}{head}{links.make(kind, recipient_id, index)}{tail}"

    def message(self, *, recipient_id: int | None, email: str, language: str, values: dict, subject_prefix: str = "",
                mail_connection=None) -> EmailMultiAlternatives:
        """The e-mail for one recipient. Without ``recipient_id`` (a test send) links are not tracked
        and the unsubscribe link leads to a page that explains it belongs to a test."""
        language = self.language_for(language)
        parts = self.content[language]
        subject = subject_prefix + rendering.subject_line(parts["subject"], values)
        text = rendering.render(parts["body"], values)
        reason, unsubscribe_label = self.footers[language]
        if recipient_id is None:
            unsubscribe = self.base + links.path(links.UNSUBSCRIBE, "test")
            tracked, pixel = {}, None
        else:
            unsubscribe = self.url(links.UNSUBSCRIBE, recipient_id)
            tracked = {url: self.url(links.CLICK, recipient_id, n) for n, url in enumerate(parts.get("links", []))}
            pixel = self.url(links.OPEN, recipient_id)
        footer_html = f'{escape(reason)} <a href="{escape(unsubscribe)}">{escape(unsubscribe_label)}</a>'
        message = EmailMultiAlternatives(
            subject, f"{text}\n\n-- \n{reason}\n{unsubscribe_label}: {unsubscribe}\n", self.from_email, [email],
            connection=mail_connection, reply_to=[self.reply_to] if self.reply_to else None,
            headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                     "Auto-Submitted": "auto-generated", "Precedence": "bulk"})
        message.attach_alternative(rendering.html_body(text, tracked=tracked, footer_html=footer_html, pixel_url=pixel),
                                   "text/html")
        return message


def composer_for(campaign: Campaign, *, agency=None) -> Composer:
    return Composer(content=campaign.content, agency=agency or require_agency(), from_name=campaign.from_name,
                    reply_to=campaign.reply_to)


# --- the run --------------------------------------------------------------------------------------

@dataclass
class _Row:
    id: int
    customer_id: int
    email: str
    language: str


_CLAIM_SQL = f"""
    UPDATE {R} SET claimed_at = %s
    WHERE id IN (SELECT id FROM {R}
                 WHERE campaign_id = %s AND status = 'pending' AND (claimed_at IS NULL OR claimed_at < %s)
                 ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
    RETURNING id, customer_id, email, language"""

_TIMELINE_SQL = f"""
    WITH todo AS (
        SELECT id, customer_id, email, sent_at FROM {R}
        WHERE campaign_id = %s AND sent_at IS NOT NULL AND contact_id IS NULL
        FOR UPDATE SKIP LOCKED),
    made AS (
        INSERT INTO {Contact._meta.db_table} (customer_id, staff_id, at, channel, direction, summary, next_step,
                                              next_step_due, resolved)
        SELECT customer_id, NULL, sent_at, 'email', 'out', replace(%s, '{{email}}', email), '', NULL, false FROM todo
        RETURNING id, customer_id)
    UPDATE {R} r SET contact_id = made.id FROM made WHERE r.campaign_id = %s AND r.customer_id = made.customer_id"""

_FINISH_SQL = f"""
    UPDATE {Campaign._meta.db_table} SET status = 'sent', finished_at = %s, heartbeat_at = %s
    WHERE id = %s AND status = 'sending' AND NOT EXISTS (SELECT 1 FROM {R} WHERE campaign_id = %s AND status = 'pending')"""


def _claim(campaign_id: int, size: int) -> list[_Row]:
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [now, campaign_id, now - CLAIM_LEASE, size])
        rows = [_Row(*r) for r in cursor.fetchall()]
    return sorted(rows, key=lambda r: r.id)


def _settle(cursor, ids: list[int], status: str, error: str = "") -> None:
    """Settle pending rows that were not sent: skipped, failed or bounced (refused for good)."""
    if not ids:
        return
    cursor.execute(f"""UPDATE {R} SET status = %s, error = %s, claimed_at = NULL,
                              bounced_at = CASE WHEN %s = 'bounced' THEN %s ELSE bounced_at END
                       WHERE id = ANY(%s) AND status = 'pending'""",
                   [status, error[:300], status, timezone.now(), ids])


def _mark_sent(cursor, row_id: int) -> None:
    """The mark that makes a send final: its own statement, committed at once."""
    cursor.execute(f"UPDATE {R} SET status = 'sent', sent_at = %s, claimed_at = NULL WHERE id = %s AND status = 'pending'",
                   [timezone.now(), row_id])


def _release(cursor, ids: list[int]) -> None:
    if ids:
        cursor.execute(f"UPDATE {R} SET claimed_at = NULL WHERE id = ANY(%s) AND status = 'pending'", [ids])


def timeline_write(campaign: Campaign) -> int:
    """One outbound e-mail entry on each mailed customer's timeline (those not written yet)."""
    agency = require_agency()
    with translation.override(agency.language):
        summary = _("Campaign e-mail “%(campaign)s” sent to %(email)s.") % {"campaign": campaign.name,
                                                                             "email": "{email}"}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_TIMELINE_SQL, [campaign.pk, summary, campaign.pk])
        return cursor.rowcount


def _allowed(rows: list[_Row]) -> set[int]:
    """Customers of the batch who may still be mailed, at the address the audience was taken with."""
    ids = [r.customer_id for r in rows]
    may = set(emailable(Customer.objects.filter(pk__in=ids)).values_list("pk", flat=True))
    addresses = set(Email.objects.filter(customer_id__in=ids).values_list("customer_id", "address"))
    return {r.customer_id for r in rows if r.customer_id in may and (r.customer_id, r.email) in addresses}


def _refusal(exc: smtplib.SMTPRecipientsRefused, email: str) -> tuple[int, str]:
    code, reason = next(iter(exc.recipients.values()), (0, b""))
    reason = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    return int(code or 0), f"{code} {reason}".strip()


def campaign_send(*, campaign_id: int, max_seconds: float = MAX_SECONDS, max_messages: int | None = None,
                  batch_size: int = BATCH) -> dict:
    """Send what is pending of a campaign (see the module's docstring). Returns counts and ``done``:
    False when the run stopped early (time or ``max_messages``) with rows still pending."""
    counts = {"sent": 0, "skipped": 0, "bounced": 0, "failed": 0, "done": True}
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.status != Campaign.Status.SENDING:
        return counts
    if not agency_writable():  # suspended or cancelled: sending pauses; the minute tick resumes it later
        return {**counts, "paused": "read-only"}
    agency = require_agency()
    composer = composer_for(campaign, agency=agency)
    throttle = Throttle(campaign.rate_per_second)
    deadline = time.monotonic() + max_seconds
    with connection.cursor() as cursor:  # see "Durability of the marks" in docs/campaigns.md
        cursor.execute("SET synchronous_commit TO off")
    try:
        _run(campaign, composer, throttle, counts, deadline=deadline, max_messages=max_messages,
             batch_size=batch_size)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")
    if counts["done"]:
        now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute(_FINISH_SQL, [now, now, campaign_id, campaign_id])
        timeline_write(campaign)
    return counts


def _run(campaign: Campaign, composer: Composer, throttle: Throttle, counts: dict, *, deadline: float,
         max_messages: int | None, batch_size: int) -> None:
    campaign_id = campaign.pk
    while True:
        room = None if max_messages is None else max_messages - counts["sent"]
        if time.monotonic() >= deadline or room == 0:
            counts["done"] = False
            break
        rows = _claim(campaign_id, batch_size if room is None else min(batch_size, room))
        if not rows:
            break
        if not Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).exists():  # cancelled
            with connection.cursor() as cursor:
                _settle(cursor, [r.id for r in rows], Recipient.Status.SKIPPED, "campaign cancelled")
            break
        _send_batch(rows, composer, throttle, counts)
        timeline_write(campaign)
        Campaign.objects.filter(pk=campaign_id).update(heartbeat_at=timezone.now())


def _send_batch(rows: list[_Row], composer: Composer, throttle: Throttle, counts: dict) -> None:
    allowed = _allowed(rows)
    values = personal_values([r.customer_id for r in rows if r.customer_id in allowed], agency=composer.agency)
    settled: set[int] = set()
    with connection.cursor() as cursor:
        skipped = [r.id for r in rows if r.customer_id not in allowed]
        _settle(cursor, skipped, Recipient.Status.SKIPPED, "no consent or address since the campaign started")
        settled.update(skipped)
        counts["skipped"] += len(skipped)
        mail = get_connection()
        try:
            mail.open()  # one connection for the whole batch
            for row in rows:
                if row.id in settled:
                    continue
                message = composer.message(recipient_id=row.id, email=row.email, language=row.language,
                                           values=values[row.customer_id], mail_connection=mail)
                throttle.wait()
                try:
                    mail.send_messages([message])
                except smtplib.SMTPRecipientsRefused as exc:
                    code, reason = _refusal(exc, row.email)
                    if code >= 500:
                        _settle(cursor, [row.id], Recipient.Status.BOUNCED, reason)
                        bounced(Customer(pk=row.customer_id), reason=reason)
                        counts["bounced"] += 1
                    else:
                        _settle(cursor, [row.id], Recipient.Status.FAILED, reason)
                        counts["failed"] += 1
                    settled.add(row.id)
                    continue
                except smtplib.SMTPDataError as exc:
                    if exc.smtp_code < 500:
                        raise
                    _settle(cursor, [row.id], Recipient.Status.FAILED, f"{exc.smtp_code} {exc.smtp_error!r}")
                    settled.add(row.id)
                    counts["failed"] += 1
                    continue
                _mark_sent(cursor, row.id)  # accepted by the server: final
                settled.add(row.id)
                counts["sent"] += 1
        except (smtplib.SMTPException, OSError) as exc:
            _release(cursor, [r.id for r in rows if r.id not in settled])
            raise SendInterrupted(f"{type(exc).__name__}: {exc}") from exc
        finally:
            try:
                mail.close()
            except Exception:  # closing a connection the server already dropped
                pass
