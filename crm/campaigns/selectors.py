"""Campaign reads (R-CAMP-3): the effect of a campaign, the lists, the customer card's section.

The effect is measured per group, each row from its own start: a mailed recipient from the moment
the server accepted their e-mail (``sent_at``), a control recipient from the campaign's start. A
recipient *responded* when they wrote or called in (an inbound contact on the timeline) or made an
enquiry (an opportunity) within the attribution window; they *booked* when a trip of theirs was
confirmed within it — ``confirmed_at`` in ``[start, start + attribution_days]``, both ends included —
and is not cancelled. Revenue and margin are the sums of those trips' items (sell, sell − cost).

Send-group rows that were never mailed (skipped for consent, refused or failed at sending, still
waiting) are left out of the send group's measure; a row that bounced later was mailed and stays in.
The lift is the send group's booking rate minus the control group's, in percentage points.
"""
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Q
from django.urls import reverse

from accounts.roles import Cap
from crm.customers.models import Contact, Customer
from crm.pipeline.models import Opportunity
from crm.trips.models import ItineraryItem, Trip

from .models import Campaign, Consent, Recipient

R, T, I, C, O = (Recipient._meta.db_table, Trip._meta.db_table, ItineraryItem._meta.db_table,
                 Contact._meta.db_table, Opportunity._meta.db_table)
BOOKED = ("confirmed", "completed")

# Recipients measured: control rows from the start, send rows from their send. One row each, with
# what they did in their window.
_MEASURED = f"""
    WITH m AS (
        SELECT r.id, r.customer_id, r."group", r.email, r.status, r.sent_at, r.opened_at, r.clicked_at,
               r.unsubscribed_at,
               CASE WHEN r."group" = 'control' THEN %(started)s ELSE r.sent_at END AS t0
        FROM {R} r WHERE r.campaign_id = %(campaign)s),
    booked AS (
        SELECT m.id, count(t.id) AS trips, coalesce(sum(x.revenue), 0) AS revenue, coalesce(sum(x.margin), 0) AS margin
        FROM m JOIN {T} t ON t.customer_id = m.customer_id AND t.status = ANY(%(booked)s)
                          AND t.confirmed_at >= m.t0 AND t.confirmed_at <= m.t0 + make_interval(days => %(days)s)
        LEFT JOIN LATERAL (SELECT sum(i.sell) AS revenue, sum(i.sell - i.cost) AS margin
                           FROM {I} i WHERE i.trip_id = t.id) x ON true
        WHERE m.t0 IS NOT NULL
        GROUP BY m.id),
    answered AS (
        SELECT m.id FROM m
        WHERE m.t0 IS NOT NULL AND (
            EXISTS (SELECT 1 FROM {C} c WHERE c.customer_id = m.customer_id AND c.direction = 'in'
                    AND c.at >= m.t0 AND c.at <= m.t0 + make_interval(days => %(days)s))
            OR EXISTS (SELECT 1 FROM {O} o WHERE o.customer_id = m.customer_id
                       AND o.created_at >= m.t0 AND o.created_at <= m.t0 + make_interval(days => %(days)s))))
"""

_RESULTS_SQL = _MEASURED + """
    SELECT m."group",
           count(*) AS recipients,
           count(*) FILTER (WHERE m.status = 'pending') AS pending,
           count(*) FILTER (WHERE m.sent_at IS NOT NULL) AS sent,
           count(*) FILTER (WHERE m.sent_at IS NOT NULL AND m.status <> 'bounced') AS delivered,
           count(*) FILTER (WHERE m.status = 'bounced') AS bounced,
           count(*) FILTER (WHERE m.status = 'failed') AS failed,
           count(*) FILTER (WHERE m.status = 'skipped') AS skipped,
           count(*) FILTER (WHERE m.opened_at IS NOT NULL) AS opened,
           count(*) FILTER (WHERE m.clicked_at IS NOT NULL) AS clicked,
           count(*) FILTER (WHERE m.unsubscribed_at IS NOT NULL) AS unsubscribed,
           count(*) FILTER (WHERE m.t0 IS NOT NULL) AS measured,
           count(a.id) AS responded,
           count(b.id) AS converted,
           coalesce(sum(b.trips), 0) AS trips,
           coalesce(sum(b.revenue), 0) AS revenue,
           coalesce(sum(b.margin), 0) AS margin
    FROM m LEFT JOIN booked b ON b.id = m.id LEFT JOIN answered a ON a.id = m.id
    GROUP BY m."group"
"""

_ROWS_SQL = _MEASURED + f"""
    SELECT cu.name, m.email, m."group", m.status, m.sent_at, m.opened_at, m.clicked_at, m.unsubscribed_at,
           a.id IS NOT NULL AS responded, coalesce(b.trips, 0), coalesce(b.revenue, 0), coalesce(b.margin, 0)
    FROM m JOIN {Customer._meta.db_table} cu ON cu.id = m.customer_id
    LEFT JOIN booked b ON b.id = m.id LEFT JOIN answered a ON a.id = m.id
    ORDER BY m.id
"""


@dataclass
class GroupResult:
    recipients: int = 0
    measured: int = 0  # control: everyone; send group: those mailed
    responded: int = 0
    converted: int = 0  # recipients with at least one trip booked in their window
    trips: int = 0
    revenue: Decimal = Decimal(0)
    margin: Decimal = Decimal(0)

    @property
    def rate(self) -> float | None:
        """Share of measured recipients who booked, in % (None when nobody is measured)."""
        return round(100.0 * self.converted / self.measured, 2) if self.measured else None

    @property
    def response_rate(self) -> float | None:
        return round(100.0 * self.responded / self.measured, 2) if self.measured else None


@dataclass
class CampaignResults:
    campaign: Campaign
    recipients: int = 0
    pending: int = 0
    sent: int = 0  # accepted by the mail server
    delivered: int = 0  # sent and not bounced later
    bounced: int = 0  # refused for good when sent, or bounced later
    failed: int = 0
    skipped: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0
    send: GroupResult = field(default_factory=GroupResult)
    control: GroupResult = field(default_factory=GroupResult)

    def _share(self, n: int) -> float | None:
        return round(100.0 * n / self.delivered, 2) if self.delivered else None

    @property
    def open_rate(self) -> float | None:
        return self._share(self.opened)

    @property
    def click_rate(self) -> float | None:
        return self._share(self.clicked)

    @property
    def lift(self) -> float | None:
        """Booking rate of the send group minus the control group's, in percentage points."""
        if self.send.rate is None or self.control.rate is None:
            return None
        return round(self.send.rate - self.control.rate, 2)

    @property
    def incremental_bookers(self) -> float | None:
        """Customers who booked because of the e-mail, estimated: the lift applied to those mailed."""
        return None if self.lift is None else round(self.lift * self.send.measured / 100.0, 1)

    @property
    def cost(self) -> Decimal:
        return self.campaign.cost

    @property
    def net_margin(self) -> Decimal:
        """The send group's margin less the campaign's cost."""
        return self.send.margin - self.campaign.cost

    @property
    def return_on_cost(self) -> float | None:
        return round(float(self.send.margin / self.campaign.cost), 2) if self.campaign.cost else None


def _params(campaign: Campaign) -> dict:
    return {"campaign": campaign.pk, "started": campaign.started_at, "days": campaign.attribution_days,
            "booked": list(BOOKED)}


def campaign_results(campaign: Campaign) -> CampaignResults:
    """Delivery, engagement and effect of a campaign (one query). Zeros for a campaign not started."""
    results = CampaignResults(campaign=campaign)
    if campaign.started_at is None:
        return results
    with connection.cursor() as cursor:
        cursor.execute(_RESULTS_SQL, _params(campaign))
        columns = [c.name for c in cursor.description]
        rows = [dict(zip(columns, r)) for r in cursor.fetchall()]
    for row in rows:
        for name in ("recipients", "pending", "sent", "delivered", "bounced", "failed", "skipped", "opened", "clicked",
                     "unsubscribed"):
            setattr(results, name, getattr(results, name) + row[name])
        group = GroupResult(recipients=row["recipients"], measured=row["measured"], responded=row["responded"],
                            converted=row["converted"], trips=row["trips"], revenue=Decimal(row["revenue"]),
                            margin=Decimal(row["margin"]))
        setattr(results, "control" if row["group"] == Recipient.Group.CONTROL else "send", group)
    return results


def recipient_rows(campaign: Campaign):
    """Per recipient (for the CSV): name, e-mail, group, status, times, responded, trips, revenue, margin."""
    if campaign.started_at is None:
        return
    with connection.cursor() as cursor:
        cursor.execute(_ROWS_SQL, _params(campaign))
        while batch := cursor.fetchmany(2000):
            yield from batch


def results_summary(results: CampaignResults) -> dict:
    """A campaign's results as plain values (rates in %, 0 when nothing was measured)."""
    campaign = results.campaign
    return {"id": campaign.pk, "name": campaign.name, "url": reverse("campaign_results", args=[campaign.pk]),
            "status": campaign.status, "started_at": campaign.started_at, "recipients": results.recipients,
            "sent": results.sent, "delivered": results.delivered, "bounced": results.bounced,
            "opened": results.opened, "clicked": results.clicked, "unsubscribed": results.unsubscribed,
            "send_size": results.send.measured, "control_size": results.control.measured,
            "send_conversion": results.send.rate or 0.0, "control_conversion": results.control.rate or 0.0,
            "lift": results.lift, "trips": results.send.trips, "revenue": results.send.revenue,
            "margin": results.send.margin, "cost": results.cost, "net_margin": results.net_margin}


def recent_results(limit: int = 5) -> list[dict]:
    """The latest started campaigns' results, newest first, as ``results_summary`` dicts (the value
    dashboard charts and lists them)."""
    campaigns = Campaign.objects.filter(started_at__isnull=False).order_by("-started_at", "-id")[:limit]
    return [results_summary(campaign_results(c)) for c in campaigns]


def campaign_list():
    return (Campaign.objects.select_related("segment", "template", "created_by")
            .annotate(recipient_count=Count("recipients"),
                      sent_count=Count("recipients", filter=Q(recipients__sent_at__isnull=False)))
            .order_by("-created_at", "-id"))


def status_counts(campaign: Campaign) -> dict:
    return dict(Recipient.objects.filter(campaign=campaign).values_list("status").annotate(n=Count("pk"))
                .values_list("status", "n"))


# --- the customer card ----------------------------------------------------------------------------

def consent_state(consent: Consent | None) -> str:
    """``opt_in`` / ``unsubscribed`` / ``bounced`` / ``opt_out`` / ``unknown`` (no record)."""
    if consent is None:
        return "unknown"
    if consent.bounced_at:
        return "bounced"
    if not consent.email_opt_in:
        return "opt_out"
    return "unsubscribed" if consent.unsubscribed_at else "opt_in"


def card_context(*, customer, user) -> dict:
    """What the customer card shows (template: frontend/campaigns/_consent_card.html)."""
    if not user.can(Cap.CUSTOMERS_VIEW):
        return {}
    consent = Consent.objects.filter(customer=customer).first()
    return {"consent_card": True, "consent": consent, "consent_state": consent_state(consent),
            "consent_can_edit": user.can(Cap.CUSTOMERS_EDIT) and not customer.merged_into_id,
            "consent_has_email": customer.emails.exists(),
            "consent_campaigns": list(Recipient.objects.filter(customer=customer, sent_at__isnull=False)
                                      .select_related("campaign").order_by("-sent_at")[:5])}
