"""Personal-data pages: the access log and a customer's data export (crm.privacy)."""
from django.urls import path

from ..views import privacy as views

urlpatterns = [
    path("privacy/access-log/", views.AccessLogView.as_view(), name="access_log"),
    path("customers/<int:pk>/access-log/", views.CustomerAccessLogView.as_view(), name="customer_access_log"),
    path("customers/<int:pk>/personal-data/", views.CustomerDataExportView.as_view(), name="customer_data_export"),
]
