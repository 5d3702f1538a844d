"""Demo visit plans for `make run`: the largest demo companies get a fixed weekly or monthly slot,
six weeks of history (most slots held, with visit records; a few missed) and their coming slots."""
import random
from datetime import time, timedelta

from django.db.models import Count
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_tenants.utils import tenant_context

from accounts.models import User
from accounts.roles import Role
from crm.customers.models import Customer, Employment
from crm.pipeline.models import Task

from . import services
from .models import VisitPlan

TOPICS = ["Q3 travel volume and the hotel cap in Shanghai 上海酒店限额", "新财年差旅政策 new travel policy",
          "Annual sales meeting in Sanya 三亚年会", "Visa support for the Frankfurt trade fair 法兰克福展会签证",
          "Invoice consolidation 发票合并"]
CONCERNS = ["", "", "Late e-tickets last month 上月出票延迟", "Wants cheaper fares to Chengdu 希望成都机票更便宜"]


def seed_visits(agency, *, accounts: int = 4, rng_seed: int = 7) -> dict:
    """Idempotent: an agency that has visit plans is left alone. Returns counts."""
    with tenant_context(agency), translation.override(agency.language):
        if VisitPlan.objects.exists():
            return {"plans": 0, "visits": 0}
        rng = random.Random(rng_seed)
        sellers = list(User.objects.filter(is_active=True, role__in=[Role.SALES, Role.MANAGER]).order_by("pk"))
        if not sellers:
            return {"plans": 0, "visits": 0}
        manager = next((u for u in sellers if u.role == Role.MANAGER), sellers[0])
        companies = list(Customer.objects.filter(kind=Customer.Kind.COMPANY, merged_into__isnull=True)
                         .annotate(people=Count("staff_links")).order_by("-people", "pk")[:accounts])
        today = services.agency_today()
        plans = visits = 0
        for n, company in enumerate(companies):
            owner = company.owner if company.owner and company.owner.is_active else sellers[n % len(sellers)]
            monthly = n % 2 == 1
            plan = services.plan_save(
                actor=manager, account=company, owner=owner,
                cadence=VisitPlan.Cadence.MONTHLY if monthly else VisitPlan.Cadence.WEEKLY,
                week_of_month=VisitPlan.WeekOfMonth.SECOND if monthly else None, weekday=n % 5,
                time_of_day=time(10 if n % 2 else 14, 0), duration_minutes=60,
                starts_on=today - timedelta(days=70), location=_("At the client's office"))
            plans += 1
            services.plan_sync(plan, today=today - timedelta(days=42))  # the past six weeks' slots, as they were
            people = list(Customer.objects.filter(pk__in=Employment.objects.filter(company=company)
                                                  .values("person_id"))[:3])
            past = Task.objects.filter(key__startswith=f"visit:{plan.pk}:", due_at__lt=timezone.now()).order_by("due_at")
            for task in past:
                if rng.random() < 0.2:
                    continue  # missed
                services.visit_record(
                    actor=owner, account=company, task=task, visited_at=task.due_at, staff=[owner],
                    met_people=people[:rng.randint(1, max(1, len(people)))], met_others="" if people else "王总 (CFO)",
                    executive_ours=rng.random() < 0.2, executive_theirs=rng.random() < 0.3,
                    topics=rng.choice(TOPICS), concerns=rng.choice(CONCERNS), satisfaction=rng.choice([4, 4, 5, 5, 3]))
                visits += 1
            services.plan_sync(plan)
        return {"plans": plans, "visits": visits}
