"""The top-bar search. Each area contributes a provider; results come grouped by area."""
from django.db.models import Q
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View

from accounts.models import User
from accounts.roles import Cap
from crm.customers.models import Customer, Employment
from crm.customers.selectors import customer_search
from crm.tiers.selectors import tiers_for

from .base import AgencyPage


def search_staff(user, query: str) -> list[dict]:
    if not user.can(Cap.STAFF_VIEW):
        return []
    found = User.objects.filter(Q(full_name__icontains=query) | Q(email__icontains=query))[:10]
    return [{"title": u.full_name, "detail": f"{u.email} · {u.get_role_display()}",
             "url": reverse("staff_edit", args=[u.pk]) if user.can(Cap.STAFF_MANAGE) else reverse("staff_list") + f"?q={u.email}"}
            for u in found]


def search_customers(user, query: str) -> list[dict]:
    if not user.can(Cap.CUSTOMERS_VIEW):
        return []
    found = customer_search(query=query, limit=10)
    companies: dict[int, list[str]] = {}
    for link in Employment.objects.filter(person__in=found, active=True).select_related("company"):
        companies.setdefault(link.person_id, []).append(link.company.name)
    tiers = tiers_for(c.pk for c in found)
    return [{"title": c.name, "tier": tiers.get(c.pk),
             "detail": " · ".join(p for p in (c.latin_name, ", ".join(companies.get(c.pk, [])),
                                              c.get_kind_display() if c.kind == Customer.Kind.COMPANY else "") if p),
             "url": reverse("customer_detail", args=[c.pk])}
            for c in found]


# (label, provider), in the order the groups are shown. Later areas (trips, orders…) add theirs here.
PROVIDERS = [(lambda: _("Customers"), search_customers), (lambda: _("Staff"), search_staff)]


class SearchView(AgencyPage, View):
    def get(self, request):
        query = request.GET.get("q", "").strip()
        groups = []
        if len(query) >= 1:
            for label, provider in PROVIDERS:
                results = provider(request.user, query)
                if results:
                    groups.append({"label": label(), "results": results})
        template = "frontend/_search_results.html" if request.htmx else "frontend/search.html"
        return render(request, template, {"query": query, "groups": groups})
