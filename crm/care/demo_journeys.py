"""Demo data from lead to trip and after, for ``seed_demo`` (R-SALE, R-CARE): an open pipeline with
unassigned leads, quotes, deposits, won and lost deals; trips in every state with itineraries,
payments (and a refund), a visa trip with its document checklist; follow-up tasks (some overdue);
answered surveys and complaints in every state.

Everything goes through the services, as staff would do it, and is then back-dated where a demo
needs history (creation dates, a complaint past its deadline).
"""
import random
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from accounts.roles import Role
from crm.customers.models import Customer

DESTINATIONS = [  # (destination, visa needed, nights, sell per person)
    ("日本 东京 · 京都", True, 6, 9800), ("泰国 普吉岛", False, 5, 6200), ("法国 巴黎", True, 8, 18800),
    ("马尔代夫", False, 5, 16800), ("新加坡", False, 4, 5600), ("澳大利亚 悉尼", True, 9, 16900),
    ("云南 丽江 · 大理", False, 5, 4200), ("海南 三亚", False, 4, 3800), ("意大利 罗马 · 佛罗伦萨", True, 9, 19800),
    ("瑞士 少女峰", True, 7, 22800), ("新西兰 皇后镇", True, 10, 24800), ("土耳其 伊斯坦布尔", False, 7, 11800),
]
AIRLINES = [("CA", "中国国际航空"), ("MU", "东方航空"), ("CZ", "南方航空"), ("HU", "海南航空"), ("NH", "全日空")]
HOTELS = ["希尔顿", "万豪", "洲际", "凯悦", "香格里拉", "亚朵"]
SUPPLIERS = ["携程商旅", "中航信", "华程国旅地接", "Klook", "众信地接"]


def seed_journeys(agency, *, opportunities: int = 120, rng_seed: int = 4) -> dict:
    """Seed ``agency`` (which must have customers and staff) and return counts of what was made."""
    from crm.care import services as care
    from crm.pipeline import services as pipeline
    from crm.pipeline.models import AssignmentRule, Opportunity, Stage, Team
    from crm.trips import services as trips
    from crm.trips.models import ChecklistItem, Trip

    rng = random.Random(rng_seed)
    with tenant_context(agency), timezone.override(agency.time_zone), transaction.atomic():
        today, now = timezone.localdate(), timezone.now()
        staff = {role: list(User.objects.filter(role=role, is_active=True)) for role in Role.values}
        sellers = staff[Role.SALES] + staff[Role.MANAGER]
        finance = (staff[Role.FINANCE] or staff[Role.ADMIN])[0]
        service = (staff[Role.SERVICE] or sellers)[0]
        team, _ = Team.objects.get_or_create(name="Sales" if agency.language == "en" else "销售组")
        team.members.set(sellers)
        people = list(Customer.objects.filter(kind=Customer.Kind.PERSON, merged_into__isnull=True,
                                              emails__isnull=False).distinct().order_by("?")[:opportunities])
        stages = {s.code: s for s in Stage.objects.all()}
        counts = {"opportunities": 0, "trips": 0, "payments": 0, "surveys answered": 0, "complaints": 0}

        def lead(customer, n):
            destination, visa, nights, per_person = DESTINATIONS[n % len(DESTINATIONS)]
            adults = rng.choice([1, 2, 2, 2, 3, 4])
            depart = today + timedelta(days=rng.randint(-150, 120))
            phone = customer.phones.first()
            source = rng.choice(["website_form", "website", "call_center", "staff"])
            opportunity = pipeline.lead_intake(
                source=source, name=customer.name, phone=phone.number if phone else "",
                email=customer.emails.first().address, destination=destination, depart_on=depart,
                return_on=depart + timedelta(days=nights), adults=adults, budget=Decimal(per_person * adults),
                message=rng.choice(["想带家人去玩，预算中等", "蜜月旅行，希望安排海景房", "公司奖励旅游，需要发票",
                                    "Looking for a relaxed itinerary with good hotels", "第一次出国，需要办签证"]))
            opportunity.value = Decimal(per_person * adults)
            opportunity.is_key = opportunity.value >= 30000
            back = now - timedelta(days=max(0, (today - depart).days) + rng.randint(20, 60))
            Opportunity.objects.filter(pk=opportunity.pk).update(value=opportunity.value, is_key=opportunity.is_key,
                                                                 created_at=back, stage_changed_at=back)
            counts["opportunities"] += 1
            return opportunity, visa, adults, per_person

        def take(opportunity):
            if opportunity.owner_id is None:
                owner = rng.choice(sellers)
                opportunity = pipeline.opportunity_assign(actor=staff[Role.MANAGER][0] if staff[Role.MANAGER] else None,
                                                        opportunity=opportunity, owner=owner)
            return Opportunity.objects.select_related("stage", "owner").get(pk=opportunity.pk)

        def quote(opportunity, visa, adults, per_person):
            actor = opportunity.owner
            pipeline.opportunity_move(actor=actor, opportunity=opportunity, to=stages["qualified"])
            trip = trips.quote_from_opportunity(actor=actor, opportunity=opportunity)
            carrier, airline = rng.choice(AIRLINES)
            fare = Decimal(per_person) * Decimal("0.35") * adults
            hotel = Decimal(per_person) * Decimal("0.4") * adults
            trips.item_add(actor=actor, trip=trip, kind="flight", description=f"{airline} {carrier}{rng.randint(100, 999)}",
                           supplier="中航信", starts_on=trip.depart_on, ends_on=trip.depart_on,
                           cost=(fare * Decimal("0.9")).quantize(Decimal("1")), sell=fare.quantize(Decimal("1")),
                           details={"carrier": carrier})
            trips.item_add(actor=actor, trip=trip, kind="hotel", description=f"{rng.choice(HOTELS)} · 豪华大床房",
                           supplier=rng.choice(SUPPLIERS), starts_on=trip.depart_on, ends_on=trip.return_on,
                           cost=(hotel * Decimal("0.85")).quantize(Decimal("1")), sell=hotel.quantize(Decimal("1")))
            trips.item_add(actor=actor, trip=trip, kind="transfer", description="机场接送 Airport transfers",
                           supplier=rng.choice(SUPPLIERS), starts_on=trip.depart_on, ends_on=trip.return_on,
                           cost=Decimal("400"), sell=Decimal("600"))
            if visa:
                trips.item_add(actor=actor, trip=trip, kind="visa", description="签证代办 Visa service",
                               supplier="签证中心", cost=Decimal(300 * adults), sell=Decimal(500 * adults))
            return Trip.objects.get(pk=trip.pk)

        def pay(trip, *, deposit=True, balance=False, refund=False):
            total = sum((i.sell for i in trip.items.all()), Decimal(0))
            if deposit:
                paid = trips.payment_record(actor=finance, trip=trip, kind="deposit", amount=(total * Decimal("0.3")).quantize(Decimal("1")),
                                            method=rng.choice(["bank", "alipay", "wechat", "card"]),
                                            received_on=min(today, (trip.depart_on or today) - timedelta(days=45)))
                counts["payments"] += 1
                if refund:
                    trips.payment_record(actor=finance, trip=trip, kind="refund", amount=(paid.amount / 2).quantize(Decimal("1")),
                                         method=paid.method, received_on=today, refund_of=paid,
                                         note="行程调整，退还部分订金")
                    counts["payments"] += 1
            if balance:
                trips.payment_record(actor=finance, trip=trip, kind="balance", amount=total - (total * Decimal("0.3")).quantize(Decimal("1")),
                                     method="bank", received_on=min(today, (trip.depart_on or today) - timedelta(days=20)))
                counts["payments"] += 1

        plan = ["new"] * 14 + ["lead"] * 8 + ["qualified"] * 12 + ["quoted"] * 14 + ["deposit"] * 10 + \
               ["won_upcoming"] * 14 + ["won_returned_yesterday"] * 4 + ["won_done"] * 26 + ["lost"] * 12 + ["cancelled"] * 6
        for n, customer in enumerate(people):
            kind = plan[n % len(plan)]
            opportunity, visa, adults, per_person = lead(customer, n)
            if kind == "lead":
                continue  # stays unowned, waiting on the board
            opportunity = take(opportunity)
            if kind == "new":
                continue
            if kind == "qualified":
                pipeline.opportunity_move(actor=opportunity.owner, opportunity=opportunity, to=stages["qualified"])
                continue
            if kind == "lost":
                pipeline.opportunity_move(actor=opportunity.owner, opportunity=opportunity, to=stages["lost"],
                                          lost_reason=rng.choice(["price", "competitor", "no_response", "plans_changed"]))
                continue
            trip = quote(opportunity, visa, adults, per_person)
            counts["trips"] += 1
            if kind == "quoted":
                continue
            future = kind in ("deposit", "won_upcoming")
            if future and trip.depart_on and trip.depart_on <= today:  # upcoming trips depart later
                shift = (today - trip.depart_on).days + rng.randint(10, 90)
                trips.trip_update(actor=opportunity.owner, trip=trip, depart_on=trip.depart_on + timedelta(days=shift),
                                  return_on=trip.return_on + timedelta(days=shift))
                trip.refresh_from_db()
            if kind == "won_returned_yesterday":
                length = (trip.return_on - trip.depart_on).days
                trips.trip_update(actor=opportunity.owner, trip=trip, depart_on=today - timedelta(days=length + 1),
                                  return_on=today - timedelta(days=1))
                trip.refresh_from_db()
            pay(trip, refund=(n % 17 == 0))
            if kind == "deposit":
                continue
            opportunity.refresh_from_db()
            pipeline.opportunity_move(actor=opportunity.owner, opportunity=opportunity, to=stages["won"])
            trip.refresh_from_db()
            if kind == "cancelled":
                trips.trip_cancel(actor=opportunity.owner, trip=trip, reason="客户行程取消 Customer cancelled")
                continue
            if kind in ("won_done", "won_returned_yesterday") or rng.random() < 0.5:
                pay(trip, deposit=False, balance=True)
            if visa:
                for item in ChecklistItem.objects.filter(traveler__trip=trip):
                    if kind != "won_upcoming" or rng.random() < 0.5:
                        trips.checklist_item_set_status(actor=service, item=item, status="received")
        # Returned trips: completed, after-trip tasks and surveys (e-mails are queued for the worker).
        care.after_trip_run(today=today)
        from crm.care.models import Complaint, Survey
        answered, unhappy = 0, []
        for survey in Survey.objects.filter(answered_at__isnull=True).select_related("trip").order_by("id"):
            if survey.trip.return_on >= today - timedelta(days=1) or rng.random() < 0.3:
                continue  # the ones that just went out, and some that never answer
            csat = rng.choice([5, 5, 5, 4, 4, 4, 3, 2, 1])
            nps = min(10, max(0, csat * 2 + rng.randint(-1, 1)))
            care.survey_answer(survey=survey, csat=csat, nps=nps, comment=rng.choice(
                ["导游非常专业，行程安排合理", "酒店位置很好，下次还找你们", "航班延误，接机司机没等到我们",
                 "Great trip, thank you!", "房间和描述不一致，体验较差", ""]))
            answered += 1
            if csat <= 2:
                unhappy.append(survey)
        counts["surveys answered"] = answered
        # Complaints: from the low scores, and a few logged by phone about completed trips; in every state.
        done = list(Trip.objects.filter(status=Trip.Status.COMPLETED).select_related("customer").order_by("id")[:4])
        sources = [(s.customer, s.trip, s, s.comment or "问卷低分，客户不满意") for s in unhappy] + [
            (t.customer, t, None, text) for t, text in zip(done, ["接机司机迟到一个小时", "酒店房间与宣传不符",
                                                                  "The guide skipped two sights", "退款到账太慢"])]
        for n, (customer, trip, survey, text) in enumerate(sources):
            complaint = care.complaint_log(actor=service, customer=customer, trip=trip, survey=survey, description=text,
                                           category=rng.choice(["hotel", "transfer", "guide", "service"]),
                                           severity=rng.choice(["medium", "high", "low"]))
            counts["complaints"] += 1
            step = n % 4  # 0 stays open, 1 in progress, 2 resolved, 3 closed
            if step >= 1:
                care.complaint_set_status(actor=service, complaint=complaint, status="in_progress")
            if step >= 2:
                care.complaint_set_status(actor=service, complaint=complaint, status="resolved",
                                          resolution="已致电道歉并与供应商核实 Apologised, checked with the supplier",
                                          compensation="voucher", compensation_amount=Decimal("500"))
            if step == 3:
                care.complaint_set_status(actor=service, complaint=complaint, status="closed")
        # One open complaint past its deadline, escalated to the managers.
        late = Complaint.objects.filter(status__in=["open", "in_progress"]).order_by("id").first()
        if late:
            Complaint.objects.filter(pk=late.pk).update(created_at=now - timedelta(days=5),
                                                        deadline_at=now - timedelta(days=2))
        care.complaints_escalate()
        # The rules come last, so the demo keeps some leads waiting to be taken.
        if not AssignmentRule.objects.exists():
            AssignmentRule.objects.create(kind=AssignmentRule.Kind.CUSTOMER_OWNER, position=10)
            AssignmentRule.objects.create(kind=AssignmentRule.Kind.ROUND_ROBIN, position=20, team=team)
        # Follow-ups: a few overdue, some today, some ahead.
        for n, opportunity in enumerate(Opportunity.objects.filter(owner__isnull=False, closed_at__isnull=True)[:30]):
            pipeline.task_create(actor=opportunity.owner, owner=opportunity.owner, customer=opportunity.customer,
                                 opportunity=opportunity, kind="call",
                                 title=rng.choice(["回电确认出行人数", "发送行程报价", "确认护照有效期", "Call back about hotel options"]),
                                 due_at=now + timedelta(days=n % 7 - 3, hours=rng.randint(0, 6)))
        return counts
