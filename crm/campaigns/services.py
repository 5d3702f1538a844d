"""Campaign writes (R-CAMP-2, R-CAMP-3): templates, drafts, test sends, scheduling, the start
(audience snapshot and control group), cancelling, bounces, opens, clicks, unsubscribes.

- ``campaign_start`` takes the audience in one statement: the segment's customers
  (``crm.segments.query.customers_matching`` of the definition, frozen on the campaign) who may be
  mailed (``consent.emailable``), inserted as recipients by ``INSERT … SELECT``. The control group
  is drawn in the same statement: customers ordered by ``md5(campaign id, customer id)`` — a
  random order seeded by the campaign — and the first ``round(n × share)`` held out. Control rows
  are never mailed.
- The template is frozen with the definition (``Campaign.content``): editing either afterwards
  changes nothing of what is sent or measured.
- Sending is ``crm.campaigns.sending`` in the ``campaigns.send`` task; ``campaigns_tick`` (every
  minute) starts due scheduled campaigns and resumes sends whose worker went quiet.
"""
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import get_connection
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Min, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.roles import Cap
from billing import services as billing
from caravan.money import parse_money
from caravan.tenancy import require_agency
from crm.customers.models import ChangeLog, Customer
from crm.segments.models import Segment
from crm.segments.query import customers_matching
from tenants.jobs import services as agency_jobs

from . import consent, rendering, sending
from .models import Campaign, Consent, EmailTemplate, Recipient

TEMPLATE_FIELDS = ("subject_zh", "body_zh", "subject_en", "body_en")
STALE_AFTER = sending.CLAIM_LEASE  # a sending campaign without a heartbeat for this long is resumed
R = Recipient._meta.db_table


def _check(actor: User | None) -> None:
    if actor is not None and not actor.can(Cap.CAMPAIGNS_MANAGE):
        raise PermissionDenied


# --- templates ------------------------------------------------------------------------------------

@transaction.atomic
def template_save(*, actor: User | None, template: EmailTemplate | None = None, name: str, subject_zh: str = "",
                  body_zh: str = "", subject_en: str = "", body_en: str = "") -> EmailTemplate:
    _check(actor)
    values = {"subject_zh": (subject_zh or "").strip(), "body_zh": (body_zh or "").strip(),
              "subject_en": (subject_en or "").strip(), "body_en": (body_en or "").strip()}
    name = (name or "").strip()
    errors: dict[str, list] = {}
    if not name:
        errors["name"] = [_("Give the template a name.")]
    elif EmailTemplate.objects.filter(name=name).exclude(pk=getattr(template, "pk", None)).exists():
        errors["name"] = [_("Another template has this name.")]
    for key, text in values.items():
        problems = rendering.placeholder_errors(text)
        if problems:
            errors[key] = problems
        elif key.startswith("subject") and len(text) > 200:
            errors[key] = [_("Keep the subject under 200 characters.")]
    written = 0
    for suffix in ("zh", "en"):
        subject, body = values[f"subject_{suffix}"], values[f"body_{suffix}"]
        if subject and not body:
            errors.setdefault(f"body_{suffix}", []).append(_("Write the body for this subject."))
        elif body and not subject:
            errors.setdefault(f"subject_{suffix}", []).append(_("Write the subject for this body."))
        written += bool(subject and body)
    if not written and not errors:
        errors["subject_zh"] = [_("Write the e-mail in at least one language.")]
    if errors:
        raise ValidationError(errors)
    template = template or EmailTemplate(created_by=actor)
    template.name = name
    for key, text in values.items():
        setattr(template, key, text)
    template.save()
    return template


def template_delete(*, actor: User | None, template: EmailTemplate) -> None:
    _check(actor)
    if template.campaigns.exists():
        raise ValidationError({"name": [_("Campaigns use this template; it cannot be deleted.")]})
    template.delete()


def template_preview(*, template: EmailTemplate, customer: Customer | None = None) -> list[dict]:
    """Per written language: the subject and body as ``customer`` (or a made-up customer) would get them."""
    agency = require_agency()
    values = (sending.personal_values([customer.pk], agency=agency).get(customer.pk) if customer else None) \
        or sending.sample_values(agency=agency)
    return [{"language": language, "subject": rendering.subject_line(parts["subject"], values),
             "body": rendering.render(parts["body"], values)}
            for language, parts in template.content().items()]


# --- drafts ---------------------------------------------------------------------------------------

def _money(value, field: str) -> Decimal:
    return parse_money(value if value not in (None, "") else 0, field=field, allow_zero=True)


@transaction.atomic
def campaign_save(*, actor: User | None, campaign: Campaign | None = None, name: str, segment: Segment | None,
                  template: EmailTemplate | None, control_share: int = 0, attribution_days: int = 30, cost=0,
                  from_name: str = "", reply_to: str = "", rate_per_second: int = 300) -> Campaign:
    """Create or change a draft (or a scheduled campaign that has not started)."""
    _check(actor)
    if campaign is not None:
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if not campaign.is_editable:
            raise ValidationError({"name": [_("This campaign has started; it can no longer be changed.")]})
    errors: dict[str, list] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = [_("Give the campaign a name.")]
    if segment is None:
        errors["segment"] = [_("Choose the segment to mail.")]
    if template is None:
        errors["template"] = [_("Choose the e-mail template.")]
    if control_share is None or not 0 <= int(control_share) <= 50:
        errors["control_share"] = [_("Hold out between 0 and 50 percent of the audience.")]
    if attribution_days is None or not 1 <= int(attribution_days) <= 365:
        errors["attribution_days"] = [_("Count bookings for 1 to 365 days.")]
    if rate_per_second is None or not 1 <= int(rate_per_second) <= 2000:
        errors["rate_per_second"] = [_("Send between 1 and 2000 e-mails a second.")]
    reply_to = (reply_to or "").strip()
    if reply_to:
        try:
            validate_email(reply_to)
        except ValidationError:
            errors["reply_to"] = [_("Enter a valid e-mail address.")]
    try:
        cost = _money(cost, "cost")
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    campaign = campaign or Campaign(created_by=actor)
    campaign.name, campaign.segment, campaign.template = name, segment, template
    campaign.control_share, campaign.attribution_days = int(control_share), int(attribution_days)
    campaign.cost, campaign.from_name, campaign.reply_to = cost, (from_name or "").strip()[:100], reply_to
    campaign.rate_per_second = int(rate_per_second)
    campaign.save()
    return campaign


@transaction.atomic
def campaign_schedule(*, actor: User | None, campaign: Campaign, at) -> Campaign:
    """Send at ``at`` (in the future). A scheduled campaign can be rescheduled or cancelled until it starts."""
    _check(actor)
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not campaign.is_editable:
        raise ValidationError({"scheduled_at": [_("This campaign has already started or was cancelled.")]})
    if at is None or at <= timezone.now():
        raise ValidationError({"scheduled_at": [_("Choose a time in the future.")]})
    _ready(campaign)
    campaign.status, campaign.scheduled_at = Campaign.Status.SCHEDULED, at
    campaign.save(update_fields=["status", "scheduled_at"])
    agency_jobs.due("campaigns.tick", at)
    return campaign


def _ready(campaign: Campaign) -> None:
    errors = {}
    if campaign.segment_id is None:
        errors["segment"] = [_("Choose the segment to mail.")]
    if not campaign.template.content():
        errors["template"] = [_("The template has no language written in full.")]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def campaign_cancel(*, actor: User | None, campaign: Campaign) -> Campaign:
    """Cancel a draft or a scheduled campaign, or stop one that is sending (within one batch):
    rows not yet claimed by a worker are skipped."""
    _check(actor)
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status in (Campaign.Status.SENT, Campaign.Status.CANCELLED):
        raise ValidationError({"status": [_("This campaign has finished; there is nothing to cancel.")]})
    now = timezone.now()
    campaign.status, campaign.cancelled_at = Campaign.Status.CANCELLED, now
    campaign.save(update_fields=["status", "cancelled_at"])
    Recipient.objects.filter(campaign=campaign, status=Recipient.Status.PENDING).exclude(
        claimed_at__gte=now - sending.CLAIM_LEASE).update(status=Recipient.Status.SKIPPED, error="campaign cancelled")
    return campaign


# --- the start ------------------------------------------------------------------------------------

_SNAPSHOT_SQL = f"""
    INSERT INTO {R} (campaign_id, customer_id, email, language, "group", status, error)
    SELECT %s, a.id, a.email, a.language,
           CASE WHEN a.rn <= round(a.n * %s / 100.0) THEN 'control' ELSE 'send' END,
           CASE WHEN a.rn <= round(a.n * %s / 100.0) THEN 'held' ELSE 'pending' END, ''
    FROM (SELECT c.id, c.language,
                 (SELECT e.address FROM crm_email e WHERE e.customer_id = c.id ORDER BY e.id LIMIT 1) AS email,
                 row_number() OVER (ORDER BY md5(%s || ':' || c.id::text), c.id) AS rn,
                 count(*) OVER () AS n
          FROM crm_customer c WHERE c.id IN ({{audience}})) a"""


def control_size(size: int, share: int) -> int:
    """How many of ``size`` customers a ``share`` % control group holds: rounded half up, as the
    snapshot statement's ``round()`` does."""
    return (2 * size * share + 100) // 200


def audience(definition: dict):
    """The customers a campaign with this segment definition would mail (or hold out) now."""
    return consent.emailable(customers_matching(definition))


def campaign_start(*, actor: User | None, campaign: Campaign, now=None, queue: bool = True) -> Campaign:
    """Freeze the segment and template, take the audience and the control group, and start sending.

    One transaction: either the campaign is *sending* with all its recipients, or nothing changed.
    The send task is queued on commit (``queue=False``: the caller sends, as the demo and bench do)."""
    from .tasks import send_campaign

    _check(actor)
    now = now or timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update(of=("self",)).select_related("segment", "template").get(pk=campaign.pk)
        if campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
            raise ValidationError({"status": [_("This campaign has already started or was cancelled.")]})
        _ready(campaign)
        campaign.definition = dict(campaign.segment.definition or {})
        campaign.content = sending.frozen_content(campaign.template)
        sql, params = audience(campaign.definition).values("pk").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(_SNAPSHOT_SQL.replace("{audience}", sql),
                           [campaign.pk, campaign.control_share, campaign.control_share, str(campaign.pk), *params])
        # The plan's monthly allowance of campaign e-mails (billing); over it, the whole start rolls back.
        billing.campaign_emails_available(
            require_agency(), Recipient.objects.filter(campaign=campaign, status=Recipient.Status.PENDING).count())
        campaign.status, campaign.started_at, campaign.heartbeat_at = Campaign.Status.SENDING, now, now
        if not Recipient.objects.filter(campaign=campaign, status=Recipient.Status.PENDING).exists():
            campaign.status, campaign.finished_at = Campaign.Status.SENT, now
        campaign.save(update_fields=["definition", "content", "status", "started_at", "heartbeat_at", "finished_at"])
        if queue and campaign.status == Campaign.Status.SENDING:
            send_campaign.delay(campaign.pk)
        if campaign.status == Campaign.Status.SENDING:  # resumed by the tick if its sending goes quiet
            agency_jobs.due("campaigns.tick", now + STALE_AFTER)
    return campaign


def campaigns_tick(*, now=None) -> dict:
    """Every minute: start scheduled campaigns that are due, and resume sends whose worker went
    quiet (no heartbeat for ``STALE_AFTER``; its claims have expired by then). Idempotent: a
    campaign is started under a row lock, once; a resumed send shares work by claims."""
    from .tasks import send_campaign

    now = now or timezone.now()
    started = resumed = 0
    due = list(Campaign.objects.filter(status=Campaign.Status.SCHEDULED, scheduled_at__lte=now)
               .order_by("scheduled_at").values_list("pk", flat=True))
    for pk in due:
        try:
            campaign_start(actor=None, campaign=Campaign(pk=pk), now=now)
        except ValidationError:  # cancelled or started meanwhile, or no longer ready (segment deleted)
            Campaign.objects.filter(pk=pk, status=Campaign.Status.SCHEDULED).update(status=Campaign.Status.DRAFT)
            continue
        started += 1
    stale = Campaign.objects.filter(status=Campaign.Status.SENDING, heartbeat_at__lt=now - STALE_AFTER)
    for pk in stale.values_list("pk", flat=True):
        with transaction.atomic():
            if Campaign.objects.filter(pk=pk, status=Campaign.Status.SENDING,
                                       heartbeat_at__lt=now - STALE_AFTER).update(heartbeat_at=now):
                send_campaign.delay(pk)
                resumed += 1
    return {"started": started, "resumed": resumed}


def campaigns_next_due():
    """When ``campaigns_tick`` next has work: the earliest scheduled start, or when the earliest
    sending campaign's heartbeat goes stale. None: nothing scheduled or sending."""
    times = Campaign.objects.aggregate(
        start=Min("scheduled_at", filter=Q(status=Campaign.Status.SCHEDULED)),
        beat=Min("heartbeat_at", filter=Q(status=Campaign.Status.SENDING)))
    return min([t for t in (times["start"], times["beat"] and times["beat"] + STALE_AFTER) if t], default=None)


# --- test send ------------------------------------------------------------------------------------

def campaign_test_send(*, actor: User | None, campaign: Campaign | None = None, template: EmailTemplate | None = None,
                       to: str, customer: Customer | None = None) -> int:
    """Send the e-mail, one per written language, to ``to`` as ``customer`` would get it (by default
    the first customer of the campaign's audience, else a made-up one). Recorded nowhere: not a
    recipient, not on a timeline. Returns the number of messages sent."""
    _check(actor)
    to = (to or "").strip()
    try:
        validate_email(to)
    except ValidationError:
        raise ValidationError({"to": [_("Enter a valid e-mail address.")]})
    template = template or (campaign.template if campaign else None)
    content = sending.frozen_content(template) if template else {}
    if not content:
        raise ValidationError({"template": [_("The template has no language written in full.")]})
    agency = require_agency()
    if customer is None and campaign is not None and campaign.segment_id:
        customer = audience(campaign.segment.definition).order_by("pk").first()
    values = (sending.personal_values([customer.pk], agency=agency).get(customer.pk) if customer else None) \
        or sending.sample_values(agency=agency)
    composer = sending.Composer(content=content, agency=agency, from_name=campaign.from_name if campaign else "",
                                reply_to=campaign.reply_to if campaign else "")
    with translation.override(agency.language):
        prefix = _("[Test]") + " "
    with get_connection() as mail:
        messages = [composer.message(recipient_id=None, email=to, language=language, values=values,
                                     subject_prefix=prefix, mail_connection=mail) for language in content]
        return mail.send_messages(messages)


# --- what recipients do ---------------------------------------------------------------------------

def recipient_opened(*, recipient_id: int) -> bool:
    """The open pixel was loaded (first time counts)."""
    return bool(Recipient.objects.filter(pk=recipient_id, sent_at__isnull=False, opened_at__isnull=True)
                .update(opened_at=timezone.now()))


def recipient_click_target(*, recipient_id: int, index: int) -> str | None:
    """The link a tracked click leads to — only a link written in the campaign's body — and the click
    recorded (an open too: a click means the e-mail was read). None for an unknown link."""
    recipient = Recipient.objects.select_related("campaign").filter(pk=recipient_id, sent_at__isnull=False).first()
    if recipient is None:
        return None
    composer = sending.composer_for(recipient.campaign)
    parts = recipient.campaign.content.get(composer.language_for(recipient.language), {})
    urls = parts.get("links", [])
    if not 0 <= index < len(urls):
        return None
    now = timezone.now()
    Recipient.objects.filter(pk=recipient_id, clicked_at__isnull=True).update(clicked_at=now)
    Recipient.objects.filter(pk=recipient_id, opened_at__isnull=True).update(opened_at=now)
    return urls[index]


def recipient_unsubscribe(*, recipient: Recipient) -> Consent:
    """The customer followed the unsubscribe link: no more marketing e-mail (``consent.unsubscribe``),
    and the campaign counts the unsubscribe."""
    with transaction.atomic():
        Recipient.objects.filter(pk=recipient.pk, unsubscribed_at__isnull=True).update(unsubscribed_at=timezone.now())
        return consent.unsubscribe(recipient.customer)


@transaction.atomic
def recipient_bounce(*, actor: User | None, campaign: Campaign, email: str, reason: str = "") -> Recipient:
    """A bounce that came back later (a bounce message in the agency's mailbox, or the mail system
    calling the API): the recipient is marked bounced and the address is not mailed again."""
    _check(actor)
    email = (email or "").strip()
    recipient = (Recipient.objects.select_for_update().select_related("customer")
                 .filter(campaign=campaign, email__iexact=email, sent_at__isnull=False).first())
    if recipient is None:
        raise ValidationError({"email": [_("This address was not mailed by this campaign.")]})
    reason = (reason or "").strip()[:300] or _("Bounce recorded by staff")
    now = timezone.now()
    if recipient.status != Recipient.Status.BOUNCED:
        recipient.status, recipient.bounced_at, recipient.error = Recipient.Status.BOUNCED, now, reason
        recipient.save(update_fields=["status", "bounced_at", "error"])
    consent.bounced(recipient.customer, reason=reason, at=now)
    return recipient


# --- consent, recorded by staff -------------------------------------------------------------------

def consent_record(*, actor: User | None, customer: Customer, opt_in: bool, source: str = Consent.Source.STAFF,
                   via: str = ChangeLog.Via.PAGE) -> Consent:
    """Staff record the customer's opt-in or opt-out (``consent.consent_set``), in the change log."""
    if actor is not None and not actor.can(Cap.CUSTOMERS_EDIT):
        raise PermissionDenied
    if customer.merged_into_id:
        raise ValidationError({"opt_in": [_("This record was merged; change the surviving record.")]})
    if source not in Consent.Source.values:
        raise ValidationError({"source": [_("Choose where the consent came from.")]})
    with transaction.atomic():
        before = Consent.objects.filter(customer=customer).first()
        was = bool(before and before.may_email)
        saved = consent.consent_set(customer, opt_in=bool(opt_in), source=source)
        if was != saved.may_email or before is None:
            ChangeLog.objects.create(customer=customer, actor=actor, via=via, field="marketing_email",
                                     old=_consent_word(before), new=_consent_word(saved))
    return saved


def _consent_word(row: Consent | None) -> str:
    if row is None:
        return ""
    if row.may_email:
        return "opt-in"
    return "bounced" if row.bounced_at else "opt-out"

