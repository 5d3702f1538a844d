"""Customer import API (R-CUST-8): upload, check (dry run), run in the background, follow progress.

    POST imports/               multipart ``file`` → 201, the job; a worker reads it (``check.state``
                                "reading"), then ``headers`` and the suggested ``mapping`` are there
    GET  imports/{id}/          status, progress, counts, errors, ``check`` (where reading/checking stands)
    POST imports/{id}/check/    {"mapping": {header: field}} → 202, the dry run is queued; ``Location``
                                is the status URL below
    GET  imports/{id}/check/    the check's state and, once done, its report
    POST imports/{id}/run/      {"mapping": {header: field}} → 202, the import is queued

No file is parsed in the web process (issue 18): reading and checking run in a worker, bounded by
what the file unpacks to (caravan.unpack).
"""
from django.utils.translation import gettext as _
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.roles import Cap
from caravan.api.errors import Conflict
from caravan.api.views import AgencyViewSet

from . import imports
from .models import ImportJob
from .tasks import import_customers


class ReportOutput(serializers.Serializer):
    total_rows = serializers.IntegerField()
    create = serializers.IntegerField()
    update = serializers.IntegerField()
    skip = serializers.IntegerField()
    new_companies = serializers.IntegerField()
    error_count = serializers.IntegerField()
    errors = serializers.ListField(child=serializers.DictField())


class CheckOutput(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=["reading", "ready", "queued", "checking", "checked", "stopped", "failed"],
        help_text="reading: the worker has not read the headers yet; ready: no check asked; queued, checking; "
                  "checked: ``report`` is the dry run of the job's mapping; stopped: the worker went away, ask "
                  "again; failed: ``message`` says why (a refused file fails the job itself).")
    message = serializers.CharField()
    report = ReportOutput(allow_null=True)


class ImportJobOutput(serializers.ModelSerializer):
    created_by = serializers.EmailField(source="created_by.email", read_only=True)
    headers = serializers.SerializerMethodField(help_text="The file's column names; null until a worker has read them.")
    check = serializers.SerializerMethodField()
    failure = serializers.SerializerMethodField(help_text="Why the job failed, in words for its user ('' if it did not).")
    errors = serializers.SerializerMethodField(help_text="[{row, field, message, text_kind?, text_params?}] (first "
                                                         "1,000): each message in the request's language.")

    class Meta:
        model = ImportJob
        fields = ["id", "original_name", "status", "mapping", "total_rows", "processed_rows", "created_count",
                  "updated_count", "error_count", "errors", "created_by", "created_at", "finished_at", "headers",
                  "check", "failure"]

    def _progress(self, job) -> dict:
        cache = self.context.setdefault("progress", {})
        if job.pk not in cache:
            cache[job.pk] = imports.progress(job)
        return cache[job.pk]

    @extend_schema_field(serializers.ListField(child=serializers.CharField(), allow_null=True))
    def get_headers(self, job):
        return self._progress(job)["headers"]

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_errors(self, job) -> list:
        return imports.errors_shown(job.errors)

    @extend_schema_field(CheckOutput)
    def get_check(self, job) -> dict:
        progress = self._progress(job)
        report = progress["report"]
        if report:
            report = {**report, "errors": imports.errors_shown(report["errors"])}
        return {"state": progress["state"], "message": progress["message"], "report": report}

    def get_failure(self, job) -> str:
        return getattr(job, "failure", "") or ""


class ImportCreatedOutput(ImportJobOutput):
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


NOT_READ = OpenApiResponse(inline_serializer("ImportNotReady", fields={"error": serializers.DictField()}),
                           description="The import has started, or its file is still being read.")


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
        job, _headers = imports.job_create(actor=request.user, upload=data.validated_data["file"])
        return Response(ImportCreatedOutput(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], request=None, responses={200: CheckOutput})
    @extend_schema(methods=["POST"], request=MappingInput, responses={202: CheckOutput, 409: NOT_READ})
    @action(detail=True, methods=["get", "post"])
    def check(self, request, pk=None):
        """POST queues the dry run in a worker (202; follow ``Location``); GET says where it stands."""
        job = self.get_object()
        if request.method == "GET":
            return Response(ImportJobOutput(job).data["check"])
        mapping = self._mapping(request)
        try:
            imports.check_request(job, mapping=mapping)
        except imports.ImportAlreadyStarted:
            raise Conflict(_("This import has already started."))
        except imports.NotReadYet:
            raise Conflict(_("The file is still being read; send the mapping once its headers are known."))
        job.refresh_from_db()
        response = Response(ImportJobOutput(job).data["check"], status=status.HTTP_202_ACCEPTED)
        response["Location"] = reverse("api:customer_import-check", args=[job.pk])
        return response

    @extend_schema(request=MappingInput, responses={202: ImportJobOutput, 409: NOT_READ})
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        job, mapping = self.get_object(), self._mapping(request)
        try:
            job = imports.job_start(job, mapping=mapping)
        except imports.ImportAlreadyStarted:
            raise Conflict(_("This import has already started."))
        except imports.NotReadYet:
            raise Conflict(_("The file is still being read; send the mapping once its headers are known."))
        import_customers.delay(job.pk)
        return Response(ImportJobOutput(job).data, status=status.HTTP_202_ACCEPTED)

    @staticmethod
    def _mapping(request) -> dict:
        data = MappingInput(data=request.data)
        data.is_valid(raise_exception=True)
        return data.validated_data["mapping"]
