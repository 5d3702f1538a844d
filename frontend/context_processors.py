from django.conf import settings

from accounts.roles import Cap
from caravan.tenancy import current_agency


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
    return {"agency": agency, "nav": nav, "can_work_pipeline": can_work_pipeline, "Cap": Cap, "LANGUAGES_SHORT": [("zh-hans", "中文"), ("en", "EN")],
            "platform_domain": settings.PLATFORM_DOMAIN}
