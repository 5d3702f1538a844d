"""Agency pages for crm.care (see frontend/views/care.py)."""
from django.urls import path

from ..views import care

urlpatterns = [
    path("complaints/", care.ComplaintListView.as_view(), name="complaint_list"),
    path("complaints/<int:pk>/", care.ComplaintDetailView.as_view(), name="complaint_detail"),
    path("complaints/<int:pk>/status/", care.ComplaintStatusView.as_view(), name="complaint_status"),
    path("complaints/<int:pk>/assign/", care.ComplaintAssignView.as_view(), name="complaint_assign"),
    path("customers/<int:pk>/complaints/new/", care.ComplaintCreateView.as_view(), name="complaint_create"),
    path("care/surveys/", care.SurveyReportView.as_view(), name="survey_report"),
    # Public: the customer's survey page, reached by a signed link (no sign-in).
    path("survey/<str:token>/", care.SurveyAnswerView.as_view(), name="survey_answer"),
]
