"""Agency pages for crm.policies (see frontend/views/policies.py)."""
from django.urls import path

from ..views import policies as views

urlpatterns = [
    path("accounts/<int:pk>/policy/", views.PolicyDetailView.as_view(), name="policy_detail"),
    path("accounts/<int:pk>/policy/edit/", views.PolicyEditView.as_view(), name="policy_edit"),
    path("accounts/<int:pk>/policy/versions/", views.PolicyHistoryView.as_view(), name="policy_history"),
    path("accounts/<int:pk>/policy/check/", views.PolicyCheckView.as_view(), name="policy_check_page"),
    path("accounts/<int:pk>/policy/report/", views.ComplianceReportView.as_view(), name="policy_report"),
    path("trips/items/<int:pk>/policy-check/", views.TripItemCheckView.as_view(), name="trip_item_policy_check"),
    path("approvals/", views.ApprovalListView.as_view(), name="approval_list"),
    path("approvals/<int:pk>/", views.ApprovalDetailView.as_view(), name="approval_detail"),
    path("settings/exchange-rates/", views.ExchangeRatesView.as_view(), name="policy_exchange_rates"),
    # Public: the approver's page, reached by a signed link (no sign-in).
    path("approval/<str:token>/", views.ApprovalAnswerView.as_view(), name="approval_answer"),
]
