"""Agency API: the signed-in user, staff management, agency settings, API tokens, and the
password-for-token exchange (also on the platform domain, for operators)."""
from django.conf import settings
from django.contrib.auth import authenticate
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from billing.throttling import AgencyPlanThrottle
from caravan.api.views import AgencyAPIView, AgencyViewSet
from caravan.api.writes import ServiceCreateMixin, ServiceUpdateMixin
from caravan.tenancy import current_agency, require_agency
from tenants.models import Agency
from tenants.services import agency_update_settings

from . import scopes as scope_rules
from . import services, signin, tokens
from .models import ApiToken, User
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


class StaffViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceCreateMixin, ServiceUpdateMixin,
                   AgencyViewSet):
    """Staff of this agency. Admins and managers read; admins invite and change."""

    serializer_class = StaffOutput
    input_serializer = StaffInviteInput
    update_serializer = StaffUpdateInput
    filterset_fields = ["role", "is_active"]
    search_fields = ["full_name", "email"]
    ordering_fields = ["full_name", "email", "date_joined", "last_login"]
    required_caps = {
        "list": Cap.STAFF_VIEW, "retrieve": Cap.STAFF_VIEW,
        "create": Cap.STAFF_MANAGE, "partial_update": Cap.STAFF_MANAGE, "resend_invitation": Cap.STAFF_MANAGE,
    }

    def agency_queryset(self):
        return User.objects.all()

    def create_service(self, data):
        return services.staff_invite(actor=self.request.user, **data)

    def update_service(self, user, data):
        return services.staff_update(actor=self.request.user, user=user, **data)

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
    api_area = scope_rules.ANY  # any valid token may ask whose it is
    required_caps = {"get": "authenticated"}

    @extend_schema(responses=MeOutput)
    def get(self, request):
        return Response(MeOutput(request.user).data)


class AgencySettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = Agency
        fields = ["slug", "name", "status", "plan", "trial_ends_at", "default_region", "currency", "time_zone", "language",
                  "require_two_factor"]
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


# --- API tokens -----------------------------------------------------------------------------------

class TokenOutput(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="email", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True)
    revoked_by = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "scopes", "user", "created_by", "created_at", "expires_at",
                  "last_used_at", "revoked_at", "revoked_by"]


class NewTokenOutput(TokenOutput):
    token = serializers.CharField(help_text="The secret: shown this once, never again.")

    class Meta(TokenOutput.Meta):
        fields = ["token", *TokenOutput.Meta.fields]


class TokenCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=scope_rules.all_scopes()), allow_empty=False)
    days = serializers.IntegerField(min_value=1, max_value=max(tokens.EXPIRY_CHOICES), default=90)


class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AgencyViewSet):
    """Named, scoped API tokens. Everyone sees and manages their own; staff managers (admins) see
    every token of the agency and may revoke any."""

    serializer_class = TokenOutput
    filterset_fields = ["user"]
    required_caps = {"list": "authenticated", "retrieve": "authenticated", "create": "authenticated",
                     "revoke": "authenticated"}

    def agency_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema's walk: no user
            return ApiToken.objects.none()
        return tokens.tokens_visible_to(self.request.user, everyone=True)

    @extend_schema(request=TokenCreateInput, responses={201: NewTokenOutput})
    def create(self, request):
        data = TokenCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        wanted = data.validated_data["scopes"]
        if isinstance(request.auth, ApiToken) and not set(wanted) <= set(request.auth.scopes):
            raise exceptions.ValidationError({"scopes": [_("A token cannot create a token with more scopes than its own.")]})
        token, secret = tokens.token_create(user=request.user, name=data.validated_data["name"], scopes=wanted,
                                            days=data.validated_data["days"], created_by=request.user)
        token.token = secret
        return Response(NewTokenOutput(token).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=TokenOutput)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        return Response(TokenOutput(tokens.token_revoke(actor=request.user, token=self.get_object())).data)


# --- password for a token ---------------------------------------------------------------------------

class LoginThrottle(AnonRateThrottle):
    scope = "login"


class SignInLocked(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"

    def __init__(self, wait: int):
        super().__init__(signin.lockout_message(wait))
        self.wait = wait


class TokenInput(serializers.Serializer):
    username = serializers.CharField(max_length=254, help_text="The e-mail address.")
    password = serializers.CharField(max_length=4096, trim_whitespace=False)
    otp = serializers.CharField(max_length=32, required=False, allow_blank=True,
                                help_text="A current code of the user's authenticator app, or a recovery code: "
                                          "required once the user has set up two-step sign-in.")


class TokenIssued(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`; shown once.")
    name = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    expires_at = serializers.DateTimeField()


class TokenView(APIView):
    """Exchange e-mail (as ``username``) and password for a named API token ("API sign-in", the
    role's scopes, ``API_TOKEN_DAYS``) of this agency, or of the platform for operators.

    Steps, each a method so a later one (a second factor) slots in: ``credentials_user`` (django-axes
    counts failures per account and address; a lockout is 429 with Retry-After), ``check_user``, then
    ``issue``."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle, AgencyPlanThrottle]
    api_area = scope_rules.ANY

    @extend_schema(request=TokenInput, responses={200: TokenIssued}, auth=[])
    def post(self, request):
        data = TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        otp = data.validated_data.pop("otp", "")
        user = self.credentials_user(request, **data.validated_data)
        self.check_user(request, user, otp=otp)
        return Response(self.issue(request, user))

    def credentials_user(self, request, *, username: str, password: str) -> User:
        django_request = request._request  # axes marks the Django request (AxesMiddleware reads it)
        user = authenticate(django_request, username=username, password=password)
        if getattr(django_request, "axes_locked_out", False):
            raise SignInLocked(signin.retry_after(username=signin.username_of(None, {"username": username}),
                                                  ip_address=getattr(django_request, "axes_ip_address", None)))
        on_platform = current_agency() is None
        if user is None or user.is_operator != on_platform:
            raise exceptions.ValidationError({"non_field_errors": [_("Unable to sign in with these credentials.")]})
        return user

    def check_user(self, request, user: User, *, otp: str = "") -> None:
        """The second step (accounts.mfa): someone with a device gives a current code, which counts
        once; someone who must have one but has not set it up gets no token until they do."""
        from accounts.mfa import services as mfa

        if mfa.has_device(user):
            if not otp or mfa.verify_code(user=user, code=otp) is None:
                # A wrong code counts like a wrong password (django-axes), so codes cannot be guessed.
                if otp and signin.record_failure(request._request, user.email):
                    raise SignInLocked(signin.retry_after(
                        username=user.email, ip_address=getattr(request._request, "axes_ip_address", None)))
                raise exceptions.ValidationError({"otp": [
                    _("Enter a current code from your authenticator app, or a recovery code.")]})
        elif mfa.second_factor_required(user):
            raise exceptions.ValidationError({"otp": [
                _("Your account needs two-step sign-in: set it up on the web first.")]})

    def issue(self, request, user: User) -> dict:
        token, secret = tokens.token_for_sign_in(user=user)
        return {"token": secret, "name": token.name, "scopes": token.scopes, "expires_at": token.expires_at}
