"""API routes for crm.pipeline, under /api/v1/."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("opportunities", api.OpportunityViewSet, basename="opportunity")
router.register("stages", api.StageViewSet, basename="stage")
router.register("tasks", api.TaskViewSet, basename="task")

urlpatterns = [
    path("pipeline/report/", api.PipelineReportView.as_view(), name="pipeline_report"),
    path("webhooks/website/", api.WebsiteWebhookView.as_view(), name="website_webhook"),
    *router.urls,
]
