"""Large customer exports in the API (``/api/v1/customer-exports/``): ``GET /customers/export/`` of a list
longer than ``CUSTOMER_EXPORT_DIRECT_ROWS`` answers 202 with one of these instead of a stream that a
timeout could cut. Each is the caller's own (another user's, another agency's: 404); ``download`` serves
the file once it is ready (409 before)."""
from django.core.exceptions import ValidationError
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers
from rest_framework.decorators import action

from accounts.roles import Cap
from caravan.api.errors import Conflict
from caravan.api.views import AgencyViewSet

from . import exports
from .models import CustomerExport


class CustomerExportOutput(serializers.ModelSerializer):
    download = serializers.SerializerMethodField(help_text="Where the file is, once ready; null before.")

    class Meta:
        model = CustomerExport
        fields = ["id", "status", "format", "filters", "total_rows", "done_rows", "size", "created_at", "finished_at",
                  "expires_at", "attempts", "failure", "download"]

    def get_download(self, job) -> str | None:
        return reverse("api:customer_export-download", args=[job.pk]) if job.downloadable else None


NOT_READY = OpenApiResponse(inline_serializer("CustomerExportNotReady", fields={"error": serializers.DictField()}),
                            description="The export is still being prepared, failed, or has expired.")


class CustomerExportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AgencyViewSet):
    serializer_class = CustomerExportOutput
    required_caps = {"*": Cap.CUSTOMERS_IMPORT}
    api_area = "customers"

    def agency_queryset(self):
        return CustomerExport.objects.filter(created_by=self.request.user)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY,
                              (200, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"): OpenApiTypes.BINARY,
                              409: NOT_READY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The export's file (CSV with BOM, or Excel), once ready."""
        job = self.get_object()
        try:
            path = exports.export_download(job=job, actor=request.user)
        except ValidationError as exc:
            raise Conflict(exc.messages[0]) from None
        content_type = "text/csv; charset=utf-8" if job.format == CustomerExport.Format.CSV else \
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        response = FileResponse(open(path, "rb"), as_attachment=True, content_type=content_type,
                                filename=f"customers-{job.created_at:%Y%m%d-%H%M}.{job.format}")
        response["Cache-Control"] = "no-store"
        return response
