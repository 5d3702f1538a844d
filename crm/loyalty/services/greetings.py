"""Care greetings (R-CARE-3): occasions, who is due, the e-mails and the owners' tasks.

- An occasion's texts are plain text with personal fields (``{{ name }}`` …), substituted by a
  regular expression, never by a template engine: staff-written text cannot run code, and an
  unknown field is a field error when the occasion is saved, not a blank in a customer's inbox.
- Who is due is found set-based, one statement per active occasion (``_GREET_SQL``): the dates
  of the window *today … today + days_before* are matched against birthdays, family dates,
  festival days (``crm.customers.festivals``) or the occasion's fixed day, 29 February counting as
  28 February in other years. Each greeting is a row under a unique (customer, occasion, date)
  key, so however often the job runs nobody is greeted twice, and a missed day is caught up
  while the occasion is still ahead.
- Whether a customer is e-mailed is decided by ``crm.campaigns.consent.emailable`` (embedded in
  the statement), and asked again at the moment of sending.
- E-mails go out in batches (``loyalty.send_greetings``), each over one SMTP connection; each
  message is claimed (``sent_at``) just before it is sent, and a failed send releases its claim so
  that a later run retries it, for two days.
"""
import logging
import re
from datetime import date, datetime, time, timedelta
from email.utils import formataddr, parseaddr
from smtplib import SMTPRecipientsRefused

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from caravan import signing
from caravan.tenancy import require_agency
from crm.campaigns import consent
from crm.customers.festivals import FESTIVALS, festival_days
from crm.customers.models import Contact, Customer, Email, FamilyDate
from crm.pipeline.models import Task
from crm.pipeline.services import tasks_create_sql

from ..models import Greeting, Occasion
from .common import agency_today, can_manage_occasions, embedded

log = logging.getLogger(__name__)

PERSONAL_FIELDS = ("name", "occasion", "agency_name", "owner_name")
_FIELD = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
TEXT_FIELDS = ("subject_zh", "body_zh", "subject_en", "body_en")
OCCASION_FIELDS = ("name", "kind", "festival", "month", "day", "days_before", *TEXT_FIELDS, "send_email",
                   "make_task", "active")
MAX_DAYS_BEFORE = 60
RESEND_WINDOW = timedelta(days=2)  # an e-mail the server refused is retried this long, then given up
STUCK_AFTER = timedelta(hours=1)  # unsent this long after it was made: queued again
SEND_BATCH = 200  # greetings per sending task (one SMTP connection each)
TASK_HOUR = time(10, 0)


# --- texts with personal fields -------------------------------------------------------------------

def text_errors(text: str) -> list[str]:
    """What is wrong with a subject or message: unknown fields, stray braces or template tags."""
    errors = []
    for match in _FIELD.finditer(text or ""):
        if match.group(1) not in PERSONAL_FIELDS:
            errors.append(_("Unknown field {{ %(field)s }}. Use %(fields)s.") % {
                "field": match.group(1) or "", "fields": ", ".join("{{ %s }}" % f for f in PERSONAL_FIELDS)})
    rest = _FIELD.sub("", text or "")
    if "{{" in rest or "}}" in rest:
        errors.append(_("Write fields with double braces on both sides, e.g. {{ name }}."))
    if "{%" in rest or "%}" in rest:
        errors.append(_("Only personal fields such as {{ name }} are allowed, no template tags."))
    return errors


def render_text(text: str, values: dict) -> str:
    """Substitute the personal fields; nothing else in the text is interpreted."""
    return _FIELD.sub(lambda match: str(values.get(match.group(1), "")), text)


# --- occasions ------------------------------------------------------------------------------------

def _clean_occasion(occasion: Occasion, data: dict) -> dict:
    errors: dict = {}
    data["name"] = (data.get("name") or "").strip()
    if not data["name"]:
        errors["name"] = [_("Name the occasion.")]
    elif len(data["name"]) > 100:
        errors["name"] = [_("At most 100 characters.")]
    kind = data.get("kind")
    if kind not in Occasion.Kind.values:
        errors["kind"] = [_("Choose what the occasion is.")]
    if kind == Occasion.Kind.FESTIVAL:
        if data.get("festival") not in FESTIVALS:
            errors["festival"] = [_("Choose the festival.")]
    else:
        data["festival"] = ""
    if kind == Occasion.Kind.CUSTOM:
        month, day = data.get("month"), data.get("day")
        try:
            date(2000, int(month), int(day))  # a leap year: 29 February is allowed
        except (TypeError, ValueError):
            errors["day"] = [_("Give a day of the year that exists, e.g. month 3, day 8.")]
        else:
            data["month"], data["day"] = int(month), int(day)
    else:
        data["month"] = data["day"] = None
    days_before = data.get("days_before")
    if isinstance(days_before, str) and days_before.strip().isdigit():
        days_before = int(days_before)
    if not isinstance(days_before, int) or isinstance(days_before, bool) or not 0 <= days_before <= MAX_DAYS_BEFORE:
        errors["days_before"] = [_("From 0 (on the day) to %(max)s days.") % {"max": MAX_DAYS_BEFORE}]
    else:
        data["days_before"] = days_before
    for name in TEXT_FIELDS:
        data[name] = (data.get(name) or "").strip()
        problems = text_errors(data[name])
        if name.startswith("subject"):
            if "\n" in data[name] or "\r" in data[name]:
                problems.append(_("The subject is one line."))
            if len(data[name]) > 200:
                problems.append(_("At most 200 characters."))
        elif len(data[name]) > 5000:
            problems.append(_("At most 5,000 characters."))
        if problems:
            errors[name] = problems
    complete = []
    for code, (subject, body) in Occasion.LANGUAGE_FIELDS.items():
        if data[subject] and not data[body]:
            errors.setdefault(body, []).append(_("Write the message to go with this subject."))
        elif data[body] and not data[subject]:
            errors.setdefault(subject, []).append(_("Write the subject of this message."))
        elif data[subject] and data[body]:
            complete.append(code)
    data["send_email"], data["make_task"] = bool(data.get("send_email")), bool(data.get("make_task"))
    data["active"] = bool(data.get("active", True))
    if data["send_email"] and not complete and not ({"subject_zh", "body_zh", "subject_en", "body_en"} & set(errors)):
        errors["subject_zh"] = [_("Write the e-mail in Chinese, English or both.")]
    if not data["send_email"] and not data["make_task"]:
        errors["send_email"] = [_("Choose an e-mail to the customer, a task for the account manager, or both.")]
    if data["active"] and kind in (Occasion.Kind.BIRTHDAY, Occasion.Kind.FAMILY_DATE, Occasion.Kind.FESTIVAL) \
            and "festival" not in errors:
        twin = Occasion.objects.filter(active=True, kind=kind, festival=data["festival"]).exclude(pk=occasion.pk).first()
        if twin is not None:
            field = "festival" if kind == Occasion.Kind.FESTIVAL else "kind"
            errors[field] = [_("“%(name)s” already greets for this; change or switch off that one.") % {"name": twin.name}]
    if errors:
        raise ValidationError(errors)
    return data


def occasion_save(*, actor: User, occasion: Occasion | None = None, **fields) -> Occasion:
    """Create or change an occasion. Past greetings are kept as they were sent."""
    if not can_manage_occasions(actor):
        raise PermissionDenied
    unknown = set(fields) - set(OCCASION_FIELDS)
    if unknown:
        raise ValidationError({name: [_("This field cannot be changed here.")] for name in sorted(unknown)})
    occasion = occasion or Occasion(created_by=actor)
    data = {name: getattr(occasion, name) for name in OCCASION_FIELDS}  # a new one's: the model's defaults
    data.update(fields)
    data = _clean_occasion(occasion, data)
    for name, value in data.items():
        setattr(occasion, name, value)
    with transaction.atomic():
        occasion.save()
    return occasion


SAMPLE_NAMES = {"zh-hans": "王芳", "en": "Grace Lin"}


def occasion_preview(*, occasion: Occasion, language: str, customer: Customer | None = None,
                     owner: User | None = None) -> tuple[str, str]:
    """The e-mail as ``customer`` (or a sample customer of ``owner``) would receive it in ``language``."""
    agency = require_agency()
    subject, body = occasion.texts(language)
    with translation.override(language):
        values = {"name": customer.name if customer else SAMPLE_NAMES.get(language, SAMPLE_NAMES["en"]),
                  "occasion": _occasion_word(occasion, label=occasion.name),
                  "agency_name": agency.name,
                  "owner_name": _owner_name(customer, agency) if customer or owner is None
                  else owner.full_name or agency.name}
        return render_text(subject, values), render_text(body, values)


# --- when occasions fall --------------------------------------------------------------------------

def anniversary(month: int, day: int, year: int) -> date:
    """The day a yearly date falls on in ``year``: 29 February is 28 February outside leap years."""
    try:
        return date(year, month, day)
    except ValueError:
        return date(year, 2, 28)


def window(occasion: Occasion, today: date) -> tuple[date, date]:
    """Occasion dates greeted today: from today to ``days_before`` days ahead (a day missed is caught up)."""
    return today, today + timedelta(days=occasion.days_before)


def occasion_dates(occasion: Occasion, today: date) -> list[date]:
    """Festival and fixed-day occasions: their dates inside today's window."""
    first, last = window(occasion, today)
    years = range(first.year, last.year + 1)
    if occasion.kind == Occasion.Kind.FESTIVAL:
        found = [days[0] for year in years if (days := festival_days(occasion.festival, year))]
    elif occasion.kind == Occasion.Kind.CUSTOM:
        found = [anniversary(occasion.month, occasion.day, year) for year in years]
    else:
        raise ValueError(occasion.kind)
    return sorted(day for day in found if first <= day <= last)


def calendar_matches(first: date, last: date) -> list[tuple[date, int, int]]:
    """For each day from ``first`` to ``last``: (day, month, day of month) of the yearly dates
    that fall on it — and (28 Feb, 2, 29) in years without a 29 February."""
    rows, day = [], first
    while day <= last:
        rows.append((day, day.month, day.day))
        if day.month == 2 and day.day == 28 and anniversary(2, 29, day.year) == day:
            rows.append((day, 2, 29))
        day += timedelta(days=1)
    return rows


# --- the daily greetings --------------------------------------------------------------------------

_DUE_BY_KIND = {
    Occasion.Kind.BIRTHDAY: """
        SELECT c.id AS customer_id, w.day AS occasion_date, %(label)s::text AS label
        FROM {customer} c
        JOIN unnest(%(w_days)s::date[], %(w_months)s::int[], %(w_doms)s::int[]) AS w(day, m, d)
          ON extract(month FROM c.birthday)::int = w.m AND extract(day FROM c.birthday)::int = w.d
        WHERE c.birthday IS NOT NULL AND c.kind = 'person'""",
    Occasion.Kind.FAMILY_DATE: """
        SELECT f.customer_id, w.day AS occasion_date, left(f.label, 100) AS label
        FROM {family_date} f
        JOIN unnest(%(w_days)s::date[], %(w_months)s::int[], %(w_doms)s::int[]) AS w(day, m, d)
          ON extract(month FROM f.date)::int = w.m AND extract(day FROM f.date)::int = w.d
        WHERE f.date < w.day""",
    Occasion.Kind.FESTIVAL: """
        SELECT c.id AS customer_id, w.day AS occasion_date, %(label)s::text AS label
        FROM {customer} c CROSS JOIN unnest(%(days)s::date[]) AS w(day)""",
}
_DUE_BY_KIND[Occasion.Kind.CUSTOM] = _DUE_BY_KIND[Occasion.Kind.FESTIVAL]

# Who is due, whether they may be e-mailed (``emailable``, embedded) and whether their account
# manager gets a task; one greeting row each, ``ON CONFLICT`` skipping those greeted already.
# Nobody without either channel is recorded: they may still be greeted if they opt in in time.
_GREET_SQL = """
WITH due AS ({due}),
may_mail AS ({emailable}),
picked AS (
    SELECT DISTINCT ON (due.customer_id, due.occasion_date)
           due.customer_id, due.occasion_date, due.label,
           CASE WHEN c.language = ANY(%(languages)s) THEN c.language ELSE %(agency_language)s END AS language,
           coalesce(mail.address, '') AS email,
           %(make_task)s AND u.id IS NOT NULL AS task
    FROM due
    JOIN {customer} c ON c.id = due.customer_id AND c.merged_into_id IS NULL
    LEFT JOIN {user} u ON u.id = c.owner_id AND u.is_active
    LEFT JOIN LATERAL (
        SELECT e.address FROM {email} e
        WHERE %(send_email)s AND e.customer_id = c.id AND c.id IN (SELECT id FROM may_mail)
        ORDER BY e.id LIMIT 1) mail ON true
    ORDER BY due.customer_id, due.occasion_date, due.label
)
INSERT INTO {greeting} (customer_id, occasion_id, occasion_date, label, channel, language, email, subject,
                        sent_at, task_id, created_at)
SELECT customer_id, %(occasion)s, occasion_date, label,
       CASE WHEN email <> '' AND task THEN 'both' WHEN email <> '' THEN 'email' ELSE 'task' END,
       language, email, '', NULL, NULL, %(now)s
FROM picked
WHERE email <> '' OR task
ON CONFLICT (customer_id, occasion_id, occasion_date) DO NOTHING
RETURNING id
"""

_TASKS_SQL = tasks_create_sql("""
SELECT %(title_prefix)s || c.name || ' (' || g.label || ', ' || to_char(g.occasion_date, 'YYYY-MM-DD') || ')',
       'greeting', jsonb_build_object('name', c.name, 'label', g.label, 'date', to_char(g.occasion_date, 'YYYY-MM-DD')),
       CASE WHEN g.channel = 'both' THEN %(notes_both)s WHEN o.send_email THEN %(notes_no_mail)s ELSE %(notes_task)s END,
       CASE WHEN g.channel = 'both' THEN 'greeting_both_note' WHEN o.send_email THEN 'greeting_no_mail_note'
            ELSE 'greeting_task_note' END, jsonb_build_object(),
       c.owner_id, c.id,
       greatest((g.occasion_date + %(task_time)s::time) AT TIME ZONE %(tz)s, %(now)s),
       'greeting:' || g.id, %(now)s
FROM {greeting} g JOIN {customer} c ON c.id = g.customer_id JOIN {occasion} o ON o.id = g.occasion_id
WHERE g.id = ANY(%(ids)s) AND g.channel IN ('task', 'both')""", kind=Task.Kind.GREETING, texts=True, notes_text=True)

_LINK_TASKS_SQL = """
UPDATE {greeting} g SET task_id = t.id FROM {task} t
WHERE g.id = ANY(%(ids)s) AND g.task_id IS NULL AND t.key = 'greeting:' || g.id
"""

# Greetings by task only reach the timeline now; e-mailed ones when the e-mail has gone.
_NOTES_SQL = """
INSERT INTO {contact} (customer_id, staff_id, at, channel, direction, summary, text_kind, text_params, next_step,
                       next_step_due, resolved)
SELECT g.customer_id, NULL, %(now)s, 'note', 'none', replace(%(summary)s, '{{label}}', g.label),
       'greeting_note', jsonb_build_object('label', g.label), '', NULL, false
FROM {greeting} g WHERE g.id = ANY(%(ids)s) AND g.channel = 'task'
"""


def _tables() -> dict:
    return {"customer": Customer._meta.db_table, "family_date": FamilyDate._meta.db_table,
            "email": Email._meta.db_table, "user": User._meta.db_table, "greeting": Greeting._meta.db_table,
            "task": Task._meta.db_table, "contact": Contact._meta.db_table, "occasion": Occasion._meta.db_table}


def _due_params(occasion: Occasion, today: date) -> dict | None:
    """The window of the occasion as statement parameters, or None when nothing falls in it."""
    if occasion.kind in (Occasion.Kind.BIRTHDAY, Occasion.Kind.FAMILY_DATE):
        rows = calendar_matches(*window(occasion, today))
        return {"w_days": [r[0] for r in rows], "w_months": [r[1] for r in rows], "w_doms": [r[2] for r in rows]}
    days = occasion_dates(occasion, today)
    return {"days": days} if days else None


def greetings_make(*, today: date | None = None, now: datetime | None = None) -> dict:
    """Record today's greetings of every active occasion, make the owners' tasks and the timeline
    notes of task-only greetings. Idempotent. Returns counts."""
    agency = require_agency()
    now = now or timezone.now()
    today = today or agency_today(now)
    tables = _tables()
    mail_sql, mail_params = embedded(consent.emailable().order_by().values("id"), "mail")
    with translation.override(agency.language):
        texts = {"title_prefix": _("Greeting") + ": ",
                 "notes_both": _("The greeting e-mail goes to the customer; add a personal word by phone or message."),
                 "notes_no_mail": _("Get in touch personally: the customer cannot be e-mailed or has no e-mail "
                                    "address."),
                 "notes_task": _("Greet the customer personally, by phone or message."),
                 "summary": _("Greeting for {label}: a task for the account manager to get in touch personally.")}
    made: list[int] = []
    with transaction.atomic(), connection.cursor() as cursor:
        for occasion in Occasion.objects.filter(active=True).order_by("pk"):
            params = _due_params(occasion, today)
            if params is None:
                continue
            sql = _GREET_SQL.format(due=_DUE_BY_KIND[occasion.kind].format(**tables), emailable=mail_sql, **tables)
            cursor.execute(sql, {**params, **mail_params, "label": occasion.name, "occasion": occasion.pk,
                                 "languages": list(Occasion.LANGUAGE_FIELDS), "agency_language": agency.language,
                                 "send_email": occasion.send_email, "make_task": occasion.make_task, "now": now})
            made += [row[0] for row in cursor.fetchall()]
        tasks = 0
        if made:
            common = {"ids": made, "now": now, **texts, "task_time": TASK_HOUR,
                      "tz": agency.time_zone}
            cursor.execute(_TASKS_SQL.format(**tables), common)
            tasks = cursor.rowcount
            cursor.execute(_LINK_TASKS_SQL.format(**tables), common)
            cursor.execute(_NOTES_SQL.format(**tables), common)
    return {"greetings": len(made), "tasks": tasks}


# --- sending --------------------------------------------------------------------------------------

def unsubscribe_token(customer: Customer) -> str:
    return signing.dumps("loyalty.unsubscribe", customer.pk)


def unsubscribe_url(customer: Customer) -> str:
    return require_agency().url(reverse("care_unsubscribe", args=[unsubscribe_token(customer)]))


def customer_from_unsubscribe_token(token: str) -> Customer | None:
    """The customer of a link from one of our greetings, or None (tampered, another agency's, gone)."""
    try:
        customer_id = signing.loads("loyalty.unsubscribe", token)
        return Customer.objects.get(pk=int(customer_id))
    except (signing.BadSignature, ValueError, TypeError, Customer.DoesNotExist):
        return None


def unsubscribe_by_token(token: str) -> Customer | None:
    """The customer followed the link at the foot of a greeting: no more e-mail from us."""
    customer = customer_from_unsubscribe_token(token)
    if customer is not None:
        consent.unsubscribe(customer)
    return customer


def _owner_name(customer: Customer | None, agency) -> str:
    owner = customer.owner if customer is not None else None
    if owner is not None and owner.is_active:
        return owner.full_name or agency.name
    return agency.name


def _occasion_word(occasion: Occasion, *, label: str) -> str:
    """What ``{{ occasion }}`` says, in the active language."""
    if occasion.kind == Occasion.Kind.BIRTHDAY:
        return _("your birthday")
    if occasion.kind == Occasion.Kind.FESTIVAL and occasion.festival in FESTIVALS:
        return str(FESTIVALS[occasion.festival][0])
    return label


def _sender(agency) -> str:
    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    return formataddr((agency.name, address))


def _message(greeting: Greeting, agency, mail_connection) -> EmailMessage:
    customer = greeting.customer
    with translation.override(greeting.language):
        subject, body = greeting.occasion.texts(greeting.language)
        values = {"name": customer.name, "occasion": _occasion_word(greeting.occasion, label=greeting.label),
                  "agency_name": agency.name, "owner_name": _owner_name(customer, agency)}
        url = unsubscribe_url(customer)
        footer = _("You receive this e-mail because you agreed to hear from %(agency)s. "
                   "To receive no more e-mails from us: %(url)s") % {"agency": agency.name, "url": url}
        subject = " ".join(render_text(subject, values).split())[:200]
        text = render_text(body, values).rstrip() + "\n\n--\n" + footer + "\n"
    return EmailMessage(subject, text, _sender(agency), [greeting.email], connection=mail_connection,
                        headers={"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})


def pending_greetings(*, now: datetime | None = None):
    """E-mail greetings not sent yet, within the resend window, to customers who may still be e-mailed."""
    now = now or timezone.now()
    return Greeting.objects.filter(channel__in=[Greeting.Channel.EMAIL, Greeting.Channel.BOTH], sent_at__isnull=True,
                                   created_at__gte=now - RESEND_WINDOW, customer__in=consent.emailable().values("id"))


def greetings_queue(*, made_since: datetime | None = None, now: datetime | None = None) -> int:
    """Queue the e-mails of the greetings made since ``made_since`` (this run's) and of those still
    unsent an hour after they were made (a failed or lost batch), in batches of ``SEND_BATCH``,
    each sent over one SMTP connection by ``loyalty.send_greetings``. Returns how many were queued."""
    from ..tasks import send_greetings

    now = now or timezone.now()
    fresh = Q(created_at__gte=made_since) if made_since else Q(pk__in=[])
    ids = list(pending_greetings(now=now).filter(fresh | Q(created_at__lt=now - STUCK_AFTER))
               .order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), SEND_BATCH):
        send_greetings.delay(ids[start:start + SEND_BATCH])
    return len(ids)


def greetings_send(*, ids: list[int] | None = None, now: datetime | None = None) -> dict:
    """Send the pending greeting e-mails (all, or those of ``ids``) over one SMTP connection. Each is
    claimed (``sent_at``) just before it is sent, so two runs never send one twice; a send that
    fails releases its claim (the next run retries it); an address the server refuses is recorded
    as bounced in the customer's consent, so it is not mailed again. Returns counts."""
    pending = pending_greetings(now=now)
    if ids is not None:
        pending = pending.filter(pk__in=ids)
    ids = list(pending.order_by("id").values_list("id", flat=True))
    if not ids:
        return {"sent": 0, "failed": 0}
    mail_connection = get_connection()
    try:
        mail_connection.open()
    except OSError:
        log.warning("Mail server unavailable: %s greeting e-mails wait for the next run.", len(ids))
        return {"sent": 0, "failed": len(ids)}
    agency, sent, failed = require_agency(), [], []
    try:
        for greeting_id in ids:
            outcome = _send_one(greeting_id, agency, mail_connection)
            if outcome is True:
                sent.append(greeting_id)
            elif outcome is False:
                failed.append(greeting_id)
    finally:
        mail_connection.close()
        _record_sent(sent, agency)
    return {"sent": len(sent), "failed": len(failed)}


def _send_one(greeting_id: int, agency, mail_connection) -> bool | None:
    """Claim, render and send one greeting. True: sent; False: failed (claim released); None: taken
    by another run meanwhile."""
    claimed_at = timezone.now()
    if not Greeting.objects.filter(pk=greeting_id, sent_at__isnull=True).update(sent_at=claimed_at):
        return None
    greeting = Greeting.objects.select_related("customer__owner", "occasion").get(pk=greeting_id)
    release = Greeting.objects.filter(pk=greeting_id, sent_at=claimed_at)
    try:
        message = _message(greeting, agency, mail_connection)
        message.send()
    except SMTPRecipientsRefused as exc:
        release.update(sent_at=None)
        consent.bounced(greeting.customer, reason=str(exc.recipients)[:300])
        return False
    except OSError:  # smtplib errors are OSErrors: the connection broke or the server refused
        release.update(sent_at=None)
        try:  # carry on with a fresh connection if the server is still there
            mail_connection.close()
            mail_connection.open()
        except OSError:
            pass
        return False
    except Exception:
        release.update(sent_at=None)
        raise
    Greeting.objects.filter(pk=greeting_id).update(subject=message.subject)
    return True


def _record_sent(ids: list[int], agency) -> None:
    """The timeline entries of the greetings just e-mailed, in one insert."""
    if not ids:
        return
    with translation.override(agency.language):
        Contact.objects.bulk_create([Contact(
            customer_id=g.customer_id, staff=None, at=g.sent_at, channel=Contact.Channel.EMAIL,
            direction=Contact.Direction.OUTBOUND,
            summary=_("Greeting for %(label)s e-mailed to %(email)s: “%(subject)s”")
            % {"label": g.label, "email": g.email, "subject": g.subject})
            for g in Greeting.objects.filter(pk__in=ids).order_by("id")])
