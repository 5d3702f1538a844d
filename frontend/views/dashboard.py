from django.db.models import Count, Q
from django.shortcuts import render
from django.utils import timezone
from django.views import View

from accounts.models import User
from accounts.roles import Cap, Role
from billing import services as billing_services
from caravan.tenancy import require_agency
from crm.care import selectors as care_selectors
from crm.loyalty import selectors as loyalty_selectors
from crm.pipeline import selectors as pipeline_selectors
from crm.policies import selectors as policies_selectors
from crm.portal import messaging as portal_messaging
from crm.tiers import selectors as tiers_selectors
from crm.trips import selectors as trips_selectors
from crm.value import selectors as value_selectors
from crm.visits import selectors as visits_selectors

from .base import AgencyPage


class DashboardView(AgencyPage, View):
    def get(self, request):
        agency = require_agency()
        # An unusable password ("!…") means the invitation is not accepted yet.
        counts = User.objects.aggregate(
            active=Count("pk", filter=Q(is_active=True) & ~Q(password__startswith="!")),
            pending=Count("pk", filter=Q(is_active=True, password__startswith="!")),
        )
        by_role = dict(User.objects.filter(is_active=True).values_list("role").annotate(n=Count("pk")))
        roles = [(label, by_role.get(value, 0)) for value, label in Role.choices]
        trial_days = None
        if agency.status == agency.Status.TRIAL and agency.trial_ends_at:
            trial_days = max(0, (agency.trial_ends_at - timezone.now()).days)
        recent = User.objects.filter(last_login__isnull=False).order_by("-last_login")[:5] \
            if request.user.can(Cap.STAFF_VIEW) else []
        return render(request, "frontend/dashboard.html", {
            "counts": counts, "roles": roles, "trial_days": trial_days, "recent_logins": recent,
            "plan_label": billing_services.plan_label(agency),
            **pipeline_selectors.dashboard_context(user=request.user),
            **trips_selectors.dashboard_context(user=request.user),
            **care_selectors.dashboard_context(user=request.user),
            **policies_selectors.dashboard_context(user=request.user),
            **tiers_selectors.dashboard_context(user=request.user),
            **visits_selectors.dashboard_context(user=request.user),
            **value_selectors.dashboard_context(user=request.user),
            **loyalty_selectors.dashboard_context(user=request.user),
            **portal_messaging.dashboard_context(user=request.user),
        })
