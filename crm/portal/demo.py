"""Demo data for the customer portal (``seed_demo``): the agency's portal settings (colours, contact,
default proposal text in its language) and one demo traveler, ``traveler@<slug>.test``, with a quote on an
open opportunity and a confirmed visa trip, so `make run` shows the portal from the customer's side
(README: sign in at /portal/ with that address; the e-mail with the link and code is in var/mail/).

Idempotent: nothing is made twice. Proposals, payments and documents add theirs in their own demo steps.
"""
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from accounts.roles import Role
from crm.customers.models import ChangeLog, Customer, Email

from .models import PortalSettings

TEXTS = {
    "zh-hans": {
        "traveler": "林晓雨", "latin": ("LIN", "Xiaoyu"), "hours": "周一至周六 9:00–18:00",
        "included": "往返经济舱机票（含税）\n全程酒店住宿（含早餐）\n机场接送\n旅行意外险",
        "excluded": "签证费（如需）\n个人消费及小费\n行程外的自费项目",
        "terms": "确认预订需支付订金；尾款须在出发前 30 天付清。\n出发前 30 天以上取消：退还订金以外的全部款项；"
                 "30 天以内取消：按供应商规定收取损失。\n价格以确认时为准，航班与酒店以实际预订为准。",
        "quote": "京都红叶季 · 家庭游", "trip": "北海道滑雪之旅",
    },
    "en": {
        "traveler": "Lin Xiaoyu 林晓雨", "latin": ("LIN", "Xiaoyu"), "hours": "Mon–Sat 9:00–18:00",
        "included": "Return economy flights (taxes included)\nHotels with breakfast\nAirport transfers\nTravel insurance",
        "excluded": "Visa fees (where needed)\nPersonal expenses and tips\nOptional excursions",
        "terms": "A deposit confirms the booking; the balance is due 30 days before departure.\n"
                 "Cancellation more than 30 days before departure: everything but the deposit is refunded; "
                 "within 30 days: suppliers' charges apply.\nPrices as confirmed; flights and hotels as booked.",
        "quote": "Kyoto in autumn · family trip", "trip": "Hokkaido ski week",
    },
}


def seed_portal(agency) -> dict:
    """Portal settings and the demo traveler of ``agency``. Returns counts of what was made."""
    from crm.customers import services as customers
    from crm.pipeline import services as pipeline
    from crm.pipeline.models import Stage
    from crm.trips import services as trips

    counts = {"settings": 0, "travelers": 0, "trips": 0}
    words = TEXTS.get(agency.language, TEXTS["en"])
    email = f"traveler@{agency.slug}.test"
    with tenant_context(agency), timezone.override(agency.time_zone), transaction.atomic():
        if not PortalSettings.objects.exists():
            PortalSettings.objects.create(
                pk=1, primary_colour="#0f5c7a" if agency.slug != "lotus" else "#2f4858",
                accent_colour="#d9822b", contact_email=f"hello@{agency.slug}.test", contact_phone="+86 21 5555 0100",
                contact_hours=words["hours"], proposal_included=words["included"],
                proposal_excluded=words["excluded"], proposal_terms=words["terms"], deposit_percent=30)
            counts["settings"] = 1
        if Email.objects.filter(address=email).exists():
            return counts
        seller = User.objects.filter(role=Role.SALES, is_active=True).order_by("id").first()
        traveler = customers.customer_create(
            actor=None, via=ChangeLog.Via.SYSTEM, name=words["traveler"], latin_surname=words["latin"][0],
            latin_given=words["latin"][1], emails=[email], phones=["+8613800138000"], language=agency.language,
            owner=seller, source=Customer.Source.WEBSITE)
        counts["travelers"] = 1
        today = timezone.localdate()
        # A quote on an open opportunity: the proposal the demo traveler reads and accepts.
        depart = today + timedelta(days=75)
        opportunity = pipeline.lead_intake(source="staff", name=traveler.name, email=email,
                                           destination="日本 京都", depart_on=depart,
                                           return_on=depart + timedelta(days=6), adults=2,
                                           budget=Decimal("26000"), message="")
        if opportunity.owner_id is None and seller is not None:
            opportunity = pipeline.opportunity_assign(actor=None, opportunity=opportunity, owner=seller)
        opportunity = type(opportunity).objects.select_related("stage").get(pk=opportunity.pk)
        qualified = Stage.objects.filter(code="quoted").first() or Stage.objects.filter(kind=Stage.Kind.OPEN).last()
        pipeline.opportunity_move(actor=seller, opportunity=opportunity, to=qualified)
        quote = trips.quote_from_opportunity(actor=seller, opportunity=opportunity)
        trips.trip_update(actor=seller, trip=quote, title=words["quote"])
        _items(trips, seller, quote, depart, flight="中国国际航空 CA927 上海—大阪", hotel="京都丽思卡尔顿 · 庭园景观房",
               extra=("tour", "岚山小火车与嵯峨野竹林一日游 Arashiyama day tour", Decimal("1600")))
        counts["trips"] += 1
        # A confirmed visa trip: itinerary with confirmation numbers, documents to upload.
        depart = today + timedelta(days=40)
        trip = trips.trip_create(actor=seller, customer=traveler, title=words["trip"], destination="日本 北海道",
                                 depart_on=depart, return_on=depart + timedelta(days=7), owner=seller)
        _items(trips, seller, trip, depart, flight="全日空 NH920 上海—札幌", hotel="二世谷希尔顿 · 山景房",
               extra=("visa", "日本签证代办 Japan visa service", Decimal("600")))
        trips.trip_confirm(actor=seller, trip=trip)
        trips.checklist_ensure(trip=trip)
        counts["trips"] += 1
    return counts


def _items(trips, actor, trip, depart, *, flight: str, hotel: str, extra: tuple) -> None:
    trips.item_add(actor=actor, trip=trip, kind="flight", description=flight, supplier="中航信",
                   starts_on=depart, ends_on=depart, cost=Decimal("5200"), sell=Decimal("5980"),
                   confirmation="PNR7Q2XK")
    trips.item_add(actor=actor, trip=trip, kind="hotel", description=hotel, supplier="携程商旅",
                   starts_on=depart, ends_on=trip.return_on, cost=Decimal("9800"), sell=Decimal("11800"),
                   confirmation="HT-2026-55821")
    trips.item_add(actor=actor, trip=trip, kind="transfer", description="机场接送 Airport transfers", supplier="Klook",
                   starts_on=depart, ends_on=trip.return_on, cost=Decimal("400"), sell=Decimal("600"))
    kind, description, sell = extra
    trips.item_add(actor=actor, trip=trip, kind=kind, description=description, supplier="众信地接",
                   starts_on=depart + timedelta(days=2), ends_on=depart + timedelta(days=2),
                   cost=(sell * Decimal("0.7")).quantize(Decimal("1")), sell=sell)
