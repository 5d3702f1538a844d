"""The top-bar search. Each area contributes a provider; results come grouped by area."""
from django.db.models import Q
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View

from accounts.models import User
from accounts.roles import Cap

from .base import AgencyPage


def search_staff(user, query: str) -> list[dict]:
    if not user.can(Cap.STAFF_VIEW):
        return []
    found = User.objects.filter(Q(full_name__icontains=query) | Q(email__icontains=query))[:10]
    return [{"title": u.full_name, "detail": f"{u.email} · {u.get_role_display()}",
             "url": reverse("staff_edit", args=[u.pk]) if user.can(Cap.STAFF_MANAGE) else reverse("staff_list") + f"?q={u.email}"}
            for u in found]


# (label, provider). Later areas (customers, trips…) append theirs here.
PROVIDERS = [(lambda: _("Staff"), search_staff)]


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
