"""Operator console pages (platform domain)."""
from django.urls import path

from ..views import agencies as views
from ..views import destinations

app_name = "console"
urlpatterns = [
    path("", views.AgencyListView.as_view(), name="agencies"),
    path("agencies/new/", views.OnboardView.as_view(), name="onboard"),
    path("agencies/<slug:slug>/", views.AgencyDetailView.as_view(), name="agency"),
    path("agencies/<slug:slug>/exports/<uuid:pk>/download/", views.ExportDownloadView.as_view(), name="export_download"),
    path("restores/", views.RestoreView.as_view(), name="restore"),
    path("signin-lockouts/", views.SignInLockoutsView.as_view(), name="signin_lockouts"),
    path("api-tokens/", views.OperatorTokensView.as_view(), name="tokens"),
    path("billing/", views.BillingOverviewView.as_view(), name="billing"),
    path("billing/plans/new/", views.PlanFormView.as_view(), name="plan_create"),
    path("billing/plans/<int:pk>/", views.PlanFormView.as_view(), name="plan_edit"),
    path("destinations/", destinations.SharedArticleListView.as_view(), name="destinations"),
    path("destinations/new/", destinations.SharedArticleFormView.as_view(), name="destination_create"),
    path("destinations/<int:pk>/", destinations.SharedArticleFormView.as_view(), name="destination"),
]
