"""Agency pages for crm.tiers (see frontend/views/tiers.py)."""
from django.urls import path

from ..views import tiers

urlpatterns = [
    path("settings/tiers/", tiers.TierSettingsView.as_view(), name="tier_settings"),
    path("settings/tiers/recompute/<int:pk>/", tiers.TierRecomputeView.as_view(), name="tier_recompute"),
    path("customers/<int:pk>/tier/", tiers.CustomerTierView.as_view(), name="customer_tier"),
    path("service-levels/", tiers.ServiceLevelReportView.as_view(), name="service_level_report"),
    path("service-levels/report.csv", tiers.ServiceLevelReportCsvView.as_view(), name="service_level_report_csv"),
    path("service-levels/clocks/", tiers.ClockListView.as_view(), name="service_clock_list"),
]
