from django.conf import settings

from accounts.roles import Cap
from caravan.tenancy import current_agency


# The header shows a few links and groups the rest in menus, so an admin's 17 items fit one row (issue 20).
# Grouped by URL name; an item no group names stays a link of its own (a new area's one nav entry works as is).
NAV_GROUPS = (
    ("sales", ("pipeline_board", "task_list", "visit_home", "approval_list", "trip_list", "document_review")),
    ("service", ("complaint_list", "survey_report", "care_home", "service_level_report")),
    ("marketing", ("campaign_list", "segment_list", "value_dashboard", "value_warnings")),
    ("admin", ("staff_list", "agency_settings")),
)


def _group_label(key: str) -> str:
    from django.utils.translation import pgettext

    return {"sales": pgettext("navigation", "Sales"), "service": pgettext("navigation", "Service"),
            "marketing": pgettext("navigation", "Marketing"), "admin": pgettext("navigation", "Admin")}[key]


def nav_menu(nav: list[tuple[str, str]], path: str = "") -> list[dict]:
    """The flat ``nav`` as the header draws it: ``{"url", "label", "current"}`` links and ``{"key", "label", "links",
    "current"}`` groups (at the place of their first item); a group the user has one item of is that item's link.
    The current item is the one whose URL is the longest beginning of ``path`` ("/" only for itself)."""
    from django.urls import Resolver404, resolve

    group_of = {name: key for key, names in NAV_GROUPS for name in names}
    menu, groups = [], {}
    for url, label in nav:
        try:
            key = group_of.get(resolve(url).url_name)
        except Resolver404:
            key = None
        if key is None:
            menu.append({"url": url, "label": label})
        elif key in groups:
            groups[key]["links"].append({"url": url, "label": label})
        else:
            groups[key] = {"key": key, "label": _group_label(key), "links": [{"url": url, "label": label}]}
            menu.append(groups[key])
    matching = [url for url, _ in nav if path == url or (url != "/" and path.startswith(url))]
    current = max(matching, key=len, default=None)
    for entry in menu:
        for item in entry.get("links", [entry]):
            item["current"] = item["url"] == current
        entry["current"] = any(item["current"] for item in entry.get("links", [entry]))
    return [entry["links"][0] if "links" in entry and len(entry["links"]) == 1 else entry for entry in menu]


def shell(request):
    """What the page shell (navigation, banners, language switch) needs on every page."""
    agency = current_agency()
    user = getattr(request, "user", None)
    nav = []
    if agency is not None and user is not None and user.is_authenticated:
        from django.urls import reverse
        from django.utils.translation import gettext as _

        nav.append((reverse("home"), _("Dashboard")))
        if user.can(Cap.CUSTOMERS_VIEW):
            nav.append((reverse("customer_list"), _("Customers")))
        if user.can(Cap.PIPELINE_WORK):
            nav.append((reverse("pipeline_board"), _("Pipeline")))
            nav.append((reverse("task_list"), _("Tasks")))
            nav.append((reverse("visit_home"), _("Visits")))
            nav.append((reverse("approval_list"), _("Approvals")))
        if user.can(Cap.PIPELINE_WORK) or user.can(Cap.PAYMENTS_VIEW):
            nav.append((reverse("trip_list"), _("Trips")))
        if user.can(Cap.DOCUMENTS_VIEW):
            nav.append((reverse("document_review"), _("Document scans")))
        if user.can(Cap.KNOWLEDGE_VIEW):
            nav.append((reverse("destination_list"), _("Destinations")))
        if user.can(Cap.COMPLAINTS_HANDLE):
            nav.append((reverse("complaint_list"), _("Complaints")))
        if user.can(Cap.COMPLAINTS_HANDLE) or user.can(Cap.REPORTS_VIEW):
            nav.append((reverse("survey_report"), _("Surveys")))
        if user.can(Cap.PIPELINE_WORK) or user.can(Cap.COMPLAINTS_HANDLE) or user.can(Cap.CAMPAIGNS_MANAGE) \
                or user.can(Cap.SETTINGS_MANAGE):
            nav.append((reverse("care_home"), _("Care")))
        if user.can(Cap.PIPELINE_MANAGE) or user.can(Cap.POLICIES_MANAGE) or user.can(Cap.REPORTS_VIEW):
            nav.append((reverse("service_level_report"), _("Service levels")))
        if user.can(Cap.CAMPAIGNS_MANAGE):
            nav.append((reverse("campaign_list"), _("Campaigns")))
        if user.can(Cap.CAMPAIGNS_MANAGE):
            nav.append((reverse("segment_list"), _("Segments")))
        if user.can(Cap.REPORTS_VIEW):
            nav.append((reverse("value_dashboard"), _("Customer value")))
        elif user.can(Cap.VALUE_VIEW):
            nav.append((reverse("value_warnings"), _("Value warnings")))
        if user.can(Cap.STAFF_VIEW):
            nav.append((reverse("staff_list"), _("Staff")))
        if user.can(Cap.SETTINGS_MANAGE):
            nav.append((reverse("agency_settings"), _("Settings")))
    can_work_pipeline = bool(agency is not None and user is not None and user.is_authenticated
                             and user.can(Cap.PIPELINE_WORK))
    return {"agency": agency, "nav": nav, "nav_menu": nav_menu(nav, request.path) if nav else [], "can_work_pipeline": can_work_pipeline, "Cap": Cap, "LANGUAGES_SHORT": [("zh-hans", "中文"), ("en", "EN")],
            "platform_domain": settings.PLATFORM_DOMAIN}
