"""Agency pages for crm.visits (see frontend/views/visits.py)."""
from django.urls import path

from ..views import visits

urlpatterns = [
    path("visits/", visits.VisitHomeView.as_view(), name="visit_home"),
    path("visits/new/", visits.VisitCreateView.as_view(), name="visit_create"),
    path("visits/<int:pk>/", visits.VisitDetailView.as_view(), name="visit_detail"),
    path("visits/plans/new/", visits.PlanFormView.as_view(), name="visit_plan_create"),
    path("visits/plans/<int:pk>/", visits.PlanFormView.as_view(), name="visit_plan_edit"),
    path("visits/report/", visits.VisitReportView.as_view(), name="visit_report"),
    path("visits/report.csv", visits.VisitReportCsvView.as_view(), name="visit_report_csv"),
    # Public: a colleague's visit slots for their calendar app, reached by a signed link (no sign-in).
    path("visits/calendar/<str:token>.ics", visits.calendar_feed, name="visit_calendar"),
]
