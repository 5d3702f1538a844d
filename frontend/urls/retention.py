"""Agency pages for crm.retention (see frontend/views/retention.py)."""
from django.urls import path

from ..views import retention

urlpatterns = [
    path("customers/<int:pk>/erase/", retention.CustomerEraseView.as_view(), name="customer_erase"),
    path("settings/personal-data/", retention.PersonalDataView.as_view(), name="personal_data"),
]
