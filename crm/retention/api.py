"""Agency API for erasure and retention (under /api/v1/). Thin: ``services`` does the work."""
from django.core.exceptions import ValidationError
from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from accounts.roles import Cap
from caravan.api.views import AgencyAPIView, AgencyViewSet
from crm.customers.models import Customer

from . import services
from .models import Erasure, RetentionPolicy, RetentionRun

ERASE_REASONS = [(value, label) for value, label in Erasure.Reason.choices if value != Erasure.Reason.RETENTION]


class ErasureOutput(serializers.ModelSerializer):
    class Meta:
        model = Erasure
        fields = ["id", "customer", "customer_ids", "actor", "via", "reason", "at", "counts", "files_deleted"]


class EraseInput(serializers.Serializer):
    reason = serializers.ChoiceField(choices=ERASE_REASONS)
    confirm = serializers.CharField(max_length=20, help_text="The customer's id again: erasure cannot be undone.")


def _as_field_errors(exc: ValidationError) -> serializers.ValidationError:
    return serializers.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages})


class CustomerEraseView(AgencyAPIView):
    """Erase one customer's personal data (GDPR Art. 17, PIPL): anonymised everywhere, trips and
    payments kept. Irreversible; ``confirm`` repeats the customer's id. Agency admins only."""

    required_caps = {"post": Cap.CUSTOMERS_ERASE}
    api_area = "customers"  # token scopes (accounts.scopes): customers:write

    @extend_schema(request=EraseInput, responses={201: ErasureOutput})
    def post(self, request, pk: int):
        customer = Customer.objects.filter(pk=pk).first()
        if customer is None:
            raise Http404
        data = EraseInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            erasure = services.customer_erase(actor=request.user, customer=customer, via=Erasure.Via.API,
                                              **data.validated_data)
        except ValidationError as exc:
            raise _as_field_errors(exc)
        return Response(ErasureOutput(erasure).data, status=status.HTTP_201_CREATED)


class ErasureViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AgencyViewSet):
    """The erasure log: who erased which customer id, when and why (no personal data)."""

    required_caps = {"list": Cap.CUSTOMERS_ERASE, "retrieve": Cap.CUSTOMERS_ERASE}
    api_area = "customers"
    serializer_class = ErasureOutput

    def agency_queryset(self):
        return Erasure.objects.order_by("-at", "-id")


class PolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = RetentionPolicy
        fields = ["document_months", "inactive_years", "email_report", "updated_at"]
        read_only_fields = ["updated_at"]
        extra_kwargs = {"document_months": {"required": True, "allow_null": True,
                                            "help_text": "Months after the last trip; null: never."},
                        "inactive_years": {"required": True, "allow_null": True, "help_text": "Years; null: off."},
                        "email_report": {"required": True}}


class PolicyView(AgencyAPIView):
    """The agency's retention policy. PUT replaces it (every field)."""

    required_caps = {"get": Cap.SETTINGS_MANAGE, "put": Cap.SETTINGS_MANAGE}
    api_area = "staff"  # agency settings

    @extend_schema(responses=PolicySerializer)
    def get(self, request):
        return Response(PolicySerializer(RetentionPolicy.load()).data)

    @extend_schema(request=PolicySerializer, responses=PolicySerializer)
    def put(self, request):
        data = PolicySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            policy = services.policy_update(actor=request.user, **data.validated_data)
        except ValidationError as exc:
            raise _as_field_errors(exc)
        return Response(PolicySerializer(policy).data)


class PreviewView(AgencyAPIView):
    """The dry run: how many documents the policy would delete and customers it would anonymise now."""

    required_caps = {"get": Cap.SETTINGS_MANAGE}
    api_area = "staff"  # agency settings

    @extend_schema(responses=inline_serializer("RetentionPreview", {
        "documents": serializers.IntegerField(), "customers": serializers.IntegerField(),
        "documents_cutoff": serializers.DateField(allow_null=True),
        "inactive_cutoff": serializers.DateTimeField(allow_null=True),
        "document_months": serializers.IntegerField(allow_null=True),
        "inactive_years": serializers.IntegerField(allow_null=True)}))
    def get(self, request):
        preview = services.retention_preview()
        return Response({**preview, "documents_cutoff": preview["documents_cutoff"],
                         "inactive_cutoff": preview["inactive_cutoff"]})


class RunOutput(serializers.ModelSerializer):
    class Meta:
        model = RetentionRun
        fields = ["id", "trigger", "started_at", "finished_at", "actor", "document_months", "inactive_years",
                  "documents_cutoff", "inactive_cutoff", "documents_deleted", "files_deleted",
                  "customers_anonymised", "remaining", "emailed_at"]


class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AgencyViewSet):
    """Retention reports (counts only). POST runs the policy now and answers the report."""

    required_caps = {"list": Cap.SETTINGS_MANAGE, "retrieve": Cap.SETTINGS_MANAGE, "create": Cap.SETTINGS_MANAGE}
    api_area = "staff"  # agency settings
    serializer_class = RunOutput

    def agency_queryset(self):
        return RetentionRun.objects.order_by("-started_at", "-id")

    @extend_schema(request=None, responses={201: RunOutput})
    def create(self, request):
        run = services.retention_run(trigger=RetentionRun.Trigger.MANUAL, actor=request.user)
        return Response(RunOutput(run).data, status=status.HTTP_201_CREATED)
