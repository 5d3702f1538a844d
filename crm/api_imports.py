"""Customer import API (R-CUST-8): upload, check (dry run), run in the background, follow progress.

    POST imports/               multipart ``file`` → the job, its headers and a suggested mapping
    GET  imports/{id}/          status, progress, counts, errors
    POST imports/{id}/check/    {"mapping": {header: field}} → the dry-run report
    POST imports/{id}/run/      {"mapping": {header: field}} → 202, the import is queued
"""
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.roles import Cap
from caravan.api.errors import Conflict
from caravan.api.views import AgencyViewSet

from . import imports
from .models import ImportJob
from .tasks import import_customers


class ImportJobOutput(serializers.ModelSerializer):
    created_by = serializers.EmailField(source="created_by.email", read_only=True)

    class Meta:
        model = ImportJob
        fields = ["id", "original_name", "status", "mapping", "total_rows", "processed_rows", "created_count",
                  "updated_count", "error_count", "errors", "created_by", "created_at", "finished_at"]


class ImportCreatedOutput(ImportJobOutput):
    headers = serializers.ListField(child=serializers.CharField(), read_only=True)
    targets = serializers.SerializerMethodField(help_text="{target field: label} for the mapping")

    class Meta(ImportJobOutput.Meta):
        fields = ImportJobOutput.Meta.fields + ["headers", "targets"]

    def get_targets(self, job) -> dict[str, str]:
        return {key: str(label) for key, label in imports.FIELDS.items()}


class UploadInput(serializers.Serializer):
    file = serializers.FileField(help_text=".csv or .xlsx, up to 20 MB; the first row names the columns.")


class MappingInput(serializers.Serializer):
    mapping = serializers.DictField(child=serializers.CharField(allow_blank=True),
                                    help_text="{column header: target field, or '' to leave the column out}")


ReportOutput = inline_serializer("ImportCheckReport", fields={
    "total_rows": serializers.IntegerField(), "create": serializers.IntegerField(),
    "update": serializers.IntegerField(), "skip": serializers.IntegerField(),
    "new_companies": serializers.IntegerField(), "error_count": serializers.IntegerField(),
    "errors": serializers.ListField(child=serializers.DictField()),
})


class ImportJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AgencyViewSet):
    """Customer imports of this agency (admins and managers)."""

    serializer_class = ImportJobOutput
    filterset_fields = ["status"]
    ordering_fields = ["created_at"]
    required_caps = {"list": Cap.CUSTOMERS_IMPORT, "retrieve": Cap.CUSTOMERS_IMPORT, "create": Cap.CUSTOMERS_IMPORT,
                     "check": Cap.CUSTOMERS_IMPORT, "run": Cap.CUSTOMERS_IMPORT}

    def agency_queryset(self):
        return ImportJob.objects.select_related("created_by")

    @extend_schema(request={"multipart/form-data": UploadInput}, responses={201: ImportCreatedOutput})
    def create(self, request):
        data = UploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        job, headers = imports.job_create(actor=request.user, upload=data.validated_data["file"])
        job.headers = headers
        return Response(ImportCreatedOutput(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MappingInput, responses={200: ReportOutput})
    @action(detail=True, methods=["post"])
    def check(self, request, pk=None):
        job, mapping = self.get_object(), self._mapping(request)
        try:
            return Response(imports.job_check(job, mapping=mapping))
        except imports.ImportAlreadyStarted:
            raise Conflict(_("This import has already started."))

    @extend_schema(request=MappingInput, responses={202: ImportJobOutput})
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        job, mapping = self.get_object(), self._mapping(request)
        try:
            job = imports.job_start(job, mapping=mapping)
        except imports.ImportAlreadyStarted:
            raise Conflict(_("This import has already started."))
        import_customers.delay(job.pk)
        return Response(ImportJobOutput(job).data, status=status.HTTP_202_ACCEPTED)

    @staticmethod
    def _mapping(request) -> dict:
        data = MappingInput(data=request.data)
        data.is_valid(raise_exception=True)
        return data.validated_data["mapping"]
