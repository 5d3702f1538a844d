"""Agency pages for crm.pipeline (see frontend/views/pipeline.py)."""
from django.urls import path

from ..views import pipeline as views

urlpatterns = [
    path("pipeline/", views.BoardView.as_view(), name="pipeline_board"),
    path("pipeline/list/", views.OpportunityListView.as_view(), name="opportunity_list"),
    path("pipeline/new/", views.OpportunityCreateView.as_view(), name="opportunity_create"),
    path("pipeline/report/", views.ReportView.as_view(), name="pipeline_report"),
    path("pipeline/<int:pk>/", views.OpportunityDetailView.as_view(), name="opportunity_detail"),
    path("pipeline/<int:pk>/edit/", views.OpportunityEditView.as_view(), name="opportunity_edit"),
    path("pipeline/<int:pk>/move/", views.OpportunityMoveView.as_view(), name="opportunity_move"),
    path("pipeline/<int:pk>/take/", views.OpportunityTakeView.as_view(), name="opportunity_take"),
    path("pipeline/<int:pk>/assign/", views.OpportunityAssignView.as_view(), name="opportunity_assign"),
    path("pipeline/<int:pk>/tasks/", views.OpportunityTaskAddView.as_view(), name="opportunity_task_add"),
    path("tasks/", views.TaskListView.as_view(), name="task_list"),
    path("tasks/new/", views.TaskCreateView.as_view(), name="task_create"),
    path("tasks/<int:pk>/", views.TaskEditView.as_view(), name="task_edit"),
    path("tasks/<int:pk>/done/", views.TaskDoneView.as_view(), name="task_done"),
    path("settings/pipeline/", views.PipelineSettingsView.as_view(), name="pipeline_settings"),
    path("enquiry/", views.enquiry_form, name="enquiry_form"),
    path("enquiry/thanks/", views.enquiry_thanks, name="enquiry_thanks"),
]
