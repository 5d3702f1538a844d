"""Agency pages for crm.value (see frontend/views/value.py)."""
from django.urls import path

from ..views import value

urlpatterns = [
    path("value/", value.ValueDashboardView.as_view(), name="value_dashboard"),
    path("value/customers/", value.ValueCustomersView.as_view(), name="value_customers"),
    path("value/warnings/", value.WarningListView.as_view(), name="value_warnings"),
    path("value/export/<str:what>.csv", value.ValueExportView.as_view(), name="value_export"),
    path("settings/value/", value.ValueSettingsView.as_view(), name="value_settings"),
]
