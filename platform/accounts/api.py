"""Agency API: the signed-in user, staff management, agency settings."""
from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from caravan.api.views import AgencyAPIView, AgencyViewSet
from caravan.tenancy import require_agency
from tenants.models import Agency
from tenants.services import agency_update_settings

from . import services
from .models import User
from .roles import ROLE_CAPS, Cap, Role


class StaffOutput(serializers.ModelSerializer):
    invitation_pending = serializers.BooleanField(read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "role", "phone", "language", "is_active",
                  "invitation_pending", "date_joined", "last_login"]


class StaffInviteInput(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    full_name = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)
    language = serializers.ChoiceField(choices=settings.LANGUAGES, required=False, default="")


class StaffUpdateInput(serializers.Serializer):
    full_name = serializers.CharField(max_length=150, required=False)
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    is_active = serializers.BooleanField(required=False)


class StaffViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AgencyViewSet):
    """Staff of this agency. Admins and managers read; admins invite and change."""

    serializer_class = StaffOutput
    filterset_fields = ["role", "is_active"]
    search_fields = ["full_name", "email"]
    ordering_fields = ["full_name", "email", "date_joined", "last_login"]
    required_caps = {
        "list": Cap.STAFF_VIEW, "retrieve": Cap.STAFF_VIEW,
        "create": Cap.STAFF_MANAGE, "partial_update": Cap.STAFF_MANAGE, "resend_invitation": Cap.STAFF_MANAGE,
    }

    def agency_queryset(self):
        return User.objects.all()

    @extend_schema(request=StaffInviteInput, responses={201: StaffOutput})
    def create(self, request):
        data = StaffInviteInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.staff_invite(actor=request.user, **data.validated_data)
        return Response(StaffOutput(user).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=StaffUpdateInput, responses=StaffOutput)
    def partial_update(self, request, pk=None):
        user = self.get_object()
        data = StaffUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.staff_update(actor=request.user, user=user, **data.validated_data)
        return Response(StaffOutput(user).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["post"], url_path="resend-invitation")
    def resend_invitation(self, request, pk=None):
        services.staff_resend_invitation(actor=request.user, user=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeOutput(StaffOutput):
    capabilities = serializers.SerializerMethodField()
    agency = serializers.SerializerMethodField()

    class Meta(StaffOutput.Meta):
        fields = StaffOutput.Meta.fields + ["capabilities", "agency"]

    def get_capabilities(self, user) -> list[str]:
        return sorted(ROLE_CAPS.get(user.role, ()))

    def get_agency(self, user) -> dict:
        agency = require_agency()
        return {"slug": agency.slug, "name": agency.name, "status": agency.status}


class MeView(AgencyAPIView):
    required_caps = {"get": "authenticated"}

    @extend_schema(responses=MeOutput)
    def get(self, request):
        return Response(MeOutput(request.user).data)


class AgencySettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = Agency
        fields = ["slug", "name", "status", "plan", "trial_ends_at", "default_region", "currency", "time_zone", "language"]
        read_only_fields = ["slug", "status", "plan", "trial_ends_at"]


class AgencySettingsView(AgencyAPIView):
    required_caps = {"get": "authenticated", "patch": Cap.SETTINGS_MANAGE}

    @extend_schema(responses=AgencySettingsSerializer)
    def get(self, request):
        return Response(AgencySettingsSerializer(require_agency()).data)

    @extend_schema(request=AgencySettingsSerializer, responses=AgencySettingsSerializer)
    def patch(self, request):
        agency = require_agency()
        data = AgencySettingsSerializer(agency, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        agency = agency_update_settings(agency=agency, actor=request.user.email, **data.validated_data)
        return Response(AgencySettingsSerializer(agency).data)
