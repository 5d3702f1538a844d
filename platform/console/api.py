"""Operator API on the platform domain: list, onboard, suspend, reactivate and delete agencies."""
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from caravan.api.views import OperatorViewSet
from tenants import services
from tenants.models import Agency


class AgencyOutput(serializers.ModelSerializer):
    domain = serializers.SerializerMethodField()

    class Meta:
        model = Agency
        fields = ["id", "slug", "name", "status", "plan", "trial_ends_at", "created_at", "domain",
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


class OperatorAgencyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OperatorViewSet):
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
        data = NoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        agency = services.agency_suspend(agency=self.get_object(), actor=request.user.email, **data.validated_data)
        return Response(AgencyOutput(agency).data)

    @extend_schema(request=NoteInput, responses=AgencyOutput)
    @action(detail=True, methods=["post"])
    def reactivate(self, request, slug=None):
        data = NoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        agency = services.agency_reactivate(agency=self.get_object(), actor=request.user.email, **data.validated_data)
        return Response(AgencyOutput(agency).data)

    @extend_schema(request=DeleteInput, responses={204: None})
    def destroy(self, request, slug=None):
        data = DeleteInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.agency_delete(agency=self.get_object(), actor=request.user.email, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)
