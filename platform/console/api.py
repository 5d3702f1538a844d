"""Operator API on the platform domain: list, onboard, suspend, reactivate and delete agencies; export them
and schedule their deletion."""
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from caravan.api.views import OperatorViewSet
from tenants import services
from tenants.models import Agency
from tenants.portability import services as portability
from tenants.portability.models import AgencyExport


class AgencyOutput(serializers.ModelSerializer):
    domain = serializers.SerializerMethodField()

    class Meta:
        model = Agency
        fields = ["id", "slug", "name", "status", "plan", "trial_ends_at", "deletion_due_at", "created_at", "domain",
                  "default_region", "currency", "time_zone", "language"]

    def get_domain(self, agency) -> str:
        return agency.get_primary_domain().domain


class OnboardInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.CharField(max_length=30)
    plan = serializers.CharField(max_length=40, help_text="A plan code on offer (the console's Billing and plans).")
    admin_email = serializers.CharField(max_length=254)
    admin_name = serializers.CharField(max_length=150, required=False, default="")
    language = serializers.ChoiceField(choices=[("zh-hans", "zh-hans"), ("en", "en")], required=False, default="zh-hans")


class OnboardOutput(serializers.Serializer):
    agency = AgencyOutput()
    admin_email = serializers.EmailField()
    invitation_url = serializers.URLField()


class NoteInput(serializers.Serializer):
    note = serializers.CharField(required=False, default="", allow_blank=True)


class DeleteInput(serializers.Serializer):
    confirm_slug = serializers.CharField()


class ExportOutput(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    tables_done = serializers.IntegerField()
    tables_total = serializers.IntegerField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    download_url = serializers.SerializerMethodField()

    def get_download_url(self, export) -> str | None:
        if not export.downloadable:
            return None
        return self.context["request"].build_absolute_uri(
            f"/api/operator/agencies/{export.agency.slug}/exports/{export.pk}/download/")


class AgencyPortabilityActions:
    """Exports and scheduled deletion on the operator API (tenants.portability does the work)."""

    @extend_schema(request=None, responses={200: ExportOutput(many=True), 202: ExportOutput})
    @action(detail=True, methods=["get", "post"])
    def exports(self, request, slug=None):
        """GET: the agency's exports; POST: start a new one (202, made in the background)."""
        agency = self.get_object()
        if request.method == "POST":
            export = portability.export_request(agency=agency, actor=request.user.email, by_operator=True)
            return Response(ExportOutput(export, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)
        rows = AgencyExport.objects.unscoped().filter(agency=agency).select_related("agency")[:20]
        return Response(ExportOutput(rows, many=True, context={"request": request}).data)

    @extend_schema(responses={(200, "application/zip"): bytes})
    @action(detail=True, methods=["get"], url_path=r"exports/(?P<export_id>[0-9a-f-]{36})/download")
    def export_download(self, request, slug=None, export_id=None):
        agency = self.get_object()
        export = get_object_or_404(AgencyExport.objects.unscoped(), pk=export_id, agency=agency)
        try:
            path = portability.export_download(export=export, actor=request.user.email)
        except ValidationError:  # not ready, or expired
            raise Http404 from None
        return FileResponse(open(path, "rb"), as_attachment=True, content_type="application/zip",
                            filename=portability.download_name(export, agency.slug))

    def _status_change(self, request, change):
        """A status change with an optional note (suspend, reactivate, schedule or cancel deletion)."""
        data = NoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        agency = change(agency=self.get_object(), actor=request.user.email, **data.validated_data)
        return Response(AgencyOutput(agency).data)

    @extend_schema(request=NoteInput, responses=AgencyOutput)
    @action(detail=True, methods=["post"], url_path="schedule-deletion")
    def schedule_deletion(self, request, slug=None):
        return self._status_change(request, portability.deletion_schedule)

    @extend_schema(request=NoteInput, responses=AgencyOutput)
    @action(detail=True, methods=["post"], url_path="cancel-deletion")
    def cancel_deletion(self, request, slug=None):
        return self._status_change(request, portability.deletion_cancel)


class OperatorAgencyViewSet(AgencyPortabilityActions, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                            OperatorViewSet):
    serializer_class = AgencyOutput
    lookup_field = "slug"
    filterset_fields = ["status", "plan"]
    search_fields = ["name", "slug"]
    ordering_fields = ["name", "created_at", "status"]

    def get_queryset(self):
        return Agency.objects.agencies().prefetch_related("domains")

    @extend_schema(request=OnboardInput, responses={201: OnboardOutput})
    def create(self, request):
        data = OnboardInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.agency_onboard(actor=request.user.email, **data.validated_data)
        return Response(OnboardOutput(result).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=NoteInput, responses=AgencyOutput)
    @action(detail=True, methods=["post"])
    def suspend(self, request, slug=None):
        return self._status_change(request, services.agency_suspend)

    @extend_schema(request=NoteInput, responses=AgencyOutput)
    @action(detail=True, methods=["post"])
    def reactivate(self, request, slug=None):
        return self._status_change(request, services.agency_reactivate)

    @extend_schema(request=DeleteInput, responses={204: None})
    def destroy(self, request, slug=None):
        data = DeleteInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.agency_delete(agency=self.get_object(), actor=request.user.email, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)
