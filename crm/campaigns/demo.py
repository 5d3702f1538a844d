"""Demo campaigns for `make run`: consent for about two thirds of the customers with an e-mail
address (a few unsubscribed or bounced), two bilingual templates, and one campaign sent three weeks
ago to a segment of individuals with a 10 % control group — opens, clicks, replies, unsubscribes,
bounces and trips booked in both groups, so the results page shows a lift. Everything is written
with set-based SQL; no mail is sent."""
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone, translation
from django_tenants.utils import tenant_context

from accounts.models import User
from accounts.roles import Role
from crm.customers.models import Contact, Customer, Email
from crm.segments.models import Segment
from crm.trips.models import ItineraryItem, Traveler, Trip

from . import services, sending
from .models import Campaign, Consent, EmailTemplate, Recipient

TEMPLATES = [
    {"name": "樱花季日本 Cherry blossoms in Japan",
     "subject_zh": "{{ first_name }}，今年去日本看樱花吧",
     "body_zh": "{{ name }} 您好，\n\n京都、大阪和东京的樱花将在三月底至四月初盛开。我们为老客户准备了七天六晚的赏樱行程，"
                "含直飞机票和精选酒店。\n\n上次您去了{{ last_destination|default:\"远方\" }}，这次不妨换个风景。\n\n"
                "行程详情：https://example.com/sakura-2027\n\n您的专属顾问 {{ owner_name|default:\"我们的顾问\" }} 随时为您服务。\n"
                "{{ agency_name }}",
     "subject_en": "{{ first_name }}, see the cherry blossoms in Japan this spring",
     "body_en": "Dear {{ name }},\n\nThe cherry trees of Kyoto, Osaka and Tokyo bloom from late March. We have put "
                "together a seven-day trip for our returning travellers, with direct flights and hand-picked hotels."
                "\n\nAfter {{ last_destination|default:\"your last trip\" }}, why not somewhere new?\n\n"
                "See the itinerary: https://example.com/sakura-2027\n\n"
                "{{ owner_name|default:\"Your travel consultant\" }} is happy to help.\n{{ agency_name }}"},
    {"name": "老客户回馈 Thank-you offer",
     "subject_zh": "感谢您的信任：下次出行立减 500 元",
     "body_zh": "{{ name }} 您好，\n\n感谢您一直以来选择{{ agency_name }}。年底前预订任意行程即可立减 500 元。\n\n"
                "查看优惠：https://example.com/thank-you\n\n{{ owner_name|default:\"您的顾问\" }}",
     "subject_en": "Thank you: 500 off your next trip",
     "body_en": "Dear {{ name }},\n\nThank you for travelling with {{ agency_name }}. Book any trip before the end "
                "of the year and we take 500 off.\n\nThe offer: https://example.com/thank-you\n\n"
                "{{ owner_name|default:\"Your travel consultant\" }}"},
]

C, E, K, R = Customer._meta.db_table, Email._meta.db_table, Consent._meta.db_table, Recipient._meta.db_table


def seed_campaigns(agency, *, days_ago: int = 21) -> dict:
    """Idempotent: an agency that has campaigns is left alone. Returns counts."""
    with tenant_context(agency), translation.override(agency.language):
        if Campaign.objects.exists():
            return {"consents": 0, "campaigns": 0, "recipients": 0, "trips": 0}
        manager = (User.objects.filter(is_active=True, role=Role.MANAGER).order_by("pk").first()
                   or User.objects.filter(is_active=True, is_operator=False).order_by("pk").first())
        with transaction.atomic():
            consents = _consents()
            templates = [services.template_save(actor=None, **fields) if not EmailTemplate.objects.filter(
                name=fields["name"]).exists() else EmailTemplate.objects.get(name=fields["name"]) for fields in TEMPLATES]
            segment = (Segment.objects.filter(definition={"kind": "person"}).first()
                       or Segment.objects.create(name="个人客户 Individuals", definition={"kind": "person"},
                                                 description="Every individual customer.", created_by=manager))
            campaign = services.campaign_save(actor=None, name="樱花季日本游 Cherry blossoms 2027", segment=segment,
                                              template=templates[0], control_share=10, attribution_days=30,
                                              cost=Decimal("1800.00"), from_name=agency.name)
            Campaign.objects.filter(pk=campaign.pk).update(created_by=manager)
            started = timezone.now() - timedelta(days=days_ago)
            campaign = services.campaign_start(actor=None, campaign=campaign, now=started, queue=False)
            recipients = _delivery(campaign, started)
            trips = _bookings(campaign, started, manager)
            services.campaign_save(actor=None, name="老客户回馈 Thank-you offer (draft)", segment=segment,
                                   template=templates[1], control_share=20, attribution_days=45, cost=Decimal("0"),
                                   from_name=agency.name)
        return {"consents": consents, "campaigns": 2, "recipients": recipients, "trips": trips}


def _consents() -> int:
    """About 65 % of people with an address agreed (via the web form, over the last year); of those
    about 3 % unsubscribed since and 1 % bounced."""
    with connection.cursor() as cursor:
        cursor.execute(f"""
            INSERT INTO {K} (customer_id, email_opt_in, opted_in_at, source, unsubscribed_at, bounced_at,
                             bounce_reason, updated_at)
            SELECT c.id, true, now() - make_interval(days => (30 + c.id % 330)::int), 'form',
                   CASE WHEN c.id % 97 < 3 THEN now() - make_interval(days => (c.id % 30)::int) END,
                   CASE WHEN c.id % 101 = 0 THEN now() - make_interval(days => (c.id % 60)::int) END,
                   CASE WHEN c.id % 101 = 0 THEN '550 5.1.1 mailbox unavailable' ELSE '' END, now()
            FROM {C} c
            WHERE c.merged_into_id IS NULL AND (c.id * 7919) % 100 < 65
              AND EXISTS (SELECT 1 FROM {E} e WHERE e.customer_id = c.id)
            ON CONFLICT (customer_id) DO NOTHING""")
        return cursor.rowcount


def _delivery(campaign: Campaign, started) -> int:
    """Sent over the first hour; about 1 % bounced; 38 % opened, 9 % clicked, 1 % unsubscribed."""
    with connection.cursor() as cursor:
        cursor.execute(f"""
            UPDATE {R} SET status = CASE WHEN customer_id %% 89 = 0 THEN 'bounced' ELSE 'sent' END,
                           sent_at = %s + make_interval(secs => (id %% 3600)::int),
                           bounced_at = CASE WHEN customer_id %% 89 = 0 THEN %s + make_interval(secs => (id %% 3600 + 60)::int) END,
                           error = CASE WHEN customer_id %% 89 = 0 THEN '550 5.1.1 user unknown' ELSE '' END
            WHERE campaign_id = %s AND status = 'pending'""", [started, started, campaign.pk])
        cursor.execute(f"""
            UPDATE {R} SET opened_at = sent_at + make_interval(mins => (5 + customer_id %% 2000)::int),
                           clicked_at = CASE WHEN (customer_id * 31) %% 100 < 9 THEN sent_at + make_interval(mins => (8 + customer_id %% 2000)::int) END,
                           unsubscribed_at = CASE WHEN (customer_id * 17) %% 100 = 0 THEN sent_at + make_interval(mins => (9 + customer_id %% 2000)::int) END
            WHERE campaign_id = %s AND status = 'sent' AND ((customer_id * 13) %% 100 < 38 OR (customer_id * 31) %% 100 < 9
                                                            OR (customer_id * 17) %% 100 = 0)""", [campaign.pk])
        cursor.execute(f"""
            UPDATE {K} k SET unsubscribed_at = r.unsubscribed_at, updated_at = r.unsubscribed_at
            FROM {R} r WHERE r.campaign_id = %s AND r.customer_id = k.customer_id AND r.unsubscribed_at IS NOT NULL""",
                       [campaign.pk])
        cursor.execute(f"""
            UPDATE {K} k SET bounced_at = r.bounced_at, bounce_reason = r.error, updated_at = r.bounced_at
            FROM {R} r WHERE r.campaign_id = %s AND r.customer_id = k.customer_id AND r.status = 'bounced'""",
                       [campaign.pk])
    now = timezone.now()
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENT, finished_at=started + timedelta(hours=1),
                                                   heartbeat_at=now)
    sending.timeline_write(campaign)
    return Recipient.objects.filter(campaign=campaign).count()


def _bookings(campaign: Campaign, started, manager) -> int:
    """Trips confirmed within the window: about 7 % of those mailed, 3 % of the control group; and a
    few replies (inbound e-mails) from the mailed."""
    rows = list(Recipient.objects.filter(campaign=campaign).exclude(status=Recipient.Status.SKIPPED)
                .values_list("customer_id", "group", "sent_at"))
    currency = connection.tenant.currency
    trips, items, travelers, replies = [], [], [], []
    for customer_id, group, sent_at in rows:
        mailed = group == Recipient.Group.SEND
        if (customer_id * 53) % 100 < (7 if mailed else 3):
            start = sent_at if mailed else started
            confirmed = start + timedelta(days=2 + customer_id % 20, hours=customer_id % 9)
            depart = date(confirmed.year, confirmed.month, confirmed.day) + timedelta(days=30 + customer_id % 20)
            trips.append(Trip(customer_id=customer_id, title="京都赏樱七日游 Kyoto cherry blossoms", destination="京都 Kyoto",
                              depart_on=depart, return_on=depart + timedelta(days=6), status=Trip.Status.CONFIRMED,
                              currency=currency, owner=manager, created_by=manager, created_at=confirmed,
                              confirmed_at=confirmed))
        if mailed and sent_at and (customer_id * 41) % 100 < 4:
            replies.append(Contact(customer_id=customer_id, at=sent_at + timedelta(hours=3 + customer_id % 40),
                                   channel=Contact.Channel.EMAIL, direction=Contact.Direction.INBOUND,
                                   summary="回复樱花季邮件：想了解四月初的日期 — replied to the cherry-blossom e-mail"))
    Trip.objects.bulk_create(trips)
    for trip in trips:
        sell_flight = Decimal(3200 + trip.customer_id % 1500)
        sell_hotel = Decimal(4200 + trip.customer_id % 2500)
        items += [ItineraryItem(trip=trip, kind=ItineraryItem.Kind.FLIGHT, description="上海—大阪 往返 Shanghai–Osaka",
                                starts_on=trip.depart_on, cost=(sell_flight * Decimal("0.88")).quantize(Decimal("0.01")),
                                sell=sell_flight),
                  ItineraryItem(trip=trip, kind=ItineraryItem.Kind.HOTEL, description="京都酒店 6 晚 Kyoto hotel, 6 nights",
                                starts_on=trip.depart_on, ends_on=trip.return_on,
                                cost=(sell_hotel * Decimal("0.8")).quantize(Decimal("0.01")), sell=sell_hotel)]
        travelers.append(Traveler(trip=trip, customer_id=trip.customer_id, is_lead=True))
    ItineraryItem.objects.bulk_create(items)
    Traveler.objects.bulk_create(travelers)
    Contact.objects.bulk_create(replies)
    return len(trips)
