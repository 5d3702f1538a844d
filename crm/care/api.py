"""After-sales care API (R-CARE-1, R-CARE-2): complaints and satisfaction surveys.

Thin: input serializers read the request, ``crm.care.services`` / ``selectors`` do the work.
"""
from django.core.exceptions import PermissionDenied
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import User
from accounts.roles import Cap
from caravan.api.fields import MoneyField
from caravan.api.periods import period_input
from caravan.api.views import AgencyViewSet
from caravan.api.writes import ServiceCreateMixin
from crm.customers.api import CustomerRef, UserRef
from crm.customers.models import Customer
from crm.trips.models import Trip

from . import selectors, services
from .models import Complaint, Survey


PeriodInput = period_input(selectors.default_period)


class CareTripRef(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()


class ComplaintOutput(serializers.ModelSerializer):
    customer = CustomerRef()
    trip = CareTripRef(allow_null=True)
    owner = UserRef(allow_null=True)
    is_overdue = serializers.BooleanField(read_only=True)
    compensation_amount = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True,
                                                   coerce_to_string=True)

    class Meta:
        model = Complaint
        fields = ["id", "customer", "trip", "survey", "category", "severity", "description", "status", "owner",
                  "deadline_at", "is_overdue", "escalated_at", "resolution", "compensation", "compensation_amount",
                  "currency", "created_at", "resolved_at"]


class ComplaintInput(serializers.Serializer):
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all())  # merged away: 409 (services)
    category = serializers.ChoiceField(choices=Complaint.Category.choices)
    severity = serializers.ChoiceField(choices=Complaint.Severity.choices, default=Complaint.Severity.MEDIUM)
    description = serializers.CharField()
    trip = serializers.PrimaryKeyRelatedField(queryset=Trip.objects.all(), required=False, allow_null=True)
    survey = serializers.PrimaryKeyRelatedField(queryset=Survey.objects.all(), required=False, allow_null=True)
    owner = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), required=False,
                                               allow_null=True)


class StatusInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=Complaint.Status.choices)
    resolution = serializers.CharField(required=False, allow_blank=True, default="")
    compensation = serializers.ChoiceField(choices=Complaint.Compensation.choices, required=False, allow_blank=True,
                                           default="")
    compensation_amount = MoneyField(min_value=0, required=False, allow_null=True, default=None)


class ComplaintAssignInput(serializers.Serializer):
    owner = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True))


class ComplaintFilterInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=Complaint.Status.choices, required=False)
    severity = serializers.ChoiceField(choices=Complaint.Severity.choices, required=False)
    owner = serializers.IntegerField(required=False)
    customer = serializers.IntegerField(required=False)
    overdue = serializers.BooleanField(required=False, default=False)
    escalated = serializers.BooleanField(required=False, default=False)


class ComplaintViewSet(mixins.RetrieveModelMixin, ServiceCreateMixin, AgencyViewSet):
    """Complaints: log, list, move through their statuses, reassign."""

    serializer_class = ComplaintOutput
    input_serializer = ComplaintInput
    required_caps = {action: Cap.COMPLAINTS_HANDLE for action in ("list", "create", "retrieve", "status", "assign")}

    def agency_queryset(self):
        return Complaint.objects.select_related("customer", "trip", "owner")

    @extend_schema(parameters=[ComplaintFilterInput], responses=ComplaintOutput(many=True))
    def list(self, request):
        filters = ComplaintFilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        page = self.paginate_queryset(selectors.complaint_list(filters=filters.validated_data))
        return self.get_paginated_response(ComplaintOutput(page, many=True).data)

    def create_service(self, data):
        return services.complaint_log(actor=self.request.user, **data)

    @extend_schema(request=StatusInput, responses=ComplaintOutput)
    @action(detail=True, methods=["post"])
    def status(self, request, pk=None):
        """open → in_progress → resolved → closed; resolved → in_progress reopens. Resolving needs
        ``resolution``; ``compensation_amount`` is required for a refund or a voucher."""
        complaint = self.get_object()
        data = StatusInput(data=request.data)
        data.is_valid(raise_exception=True)
        complaint = services.complaint_set_status(actor=request.user, complaint=complaint, **data.validated_data)
        return Response(ComplaintOutput(self.agency_queryset().get(pk=complaint.pk)).data)

    @extend_schema(request=ComplaintAssignInput, responses=ComplaintOutput)
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        complaint = self.get_object()
        data = ComplaintAssignInput(data=request.data)
        data.is_valid(raise_exception=True)
        complaint = services.complaint_assign(actor=request.user, complaint=complaint, **data.validated_data)
        return Response(ComplaintOutput(self.agency_queryset().get(pk=complaint.pk)).data)


class SurveyOutput(serializers.ModelSerializer):
    customer = CustomerRef()
    trip = CareTripRef()
    is_low = serializers.BooleanField(read_only=True)

    class Meta:
        model = Survey
        fields = ["id", "trip", "customer", "email", "created_at", "sent_at", "answered_at", "csat", "nps", "comment",
                  "is_low"]


class SurveyReportOutput(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    sent = serializers.IntegerField()
    answered = serializers.IntegerField()
    response_rate = serializers.FloatField(allow_null=True, help_text="Percent of sent surveys answered.")
    avg_csat = serializers.FloatField(allow_null=True)
    nps = serializers.IntegerField(allow_null=True, help_text="% promoters (9–10) − % detractors (0–6).")
    promoters = serializers.IntegerField()
    passives = serializers.IntegerField()
    detractors = serializers.IntegerField()
    csat_distribution = serializers.SerializerMethodField()
    nps_distribution = serializers.SerializerMethodField()
    low_scores = SurveyOutput(many=True)

    def get_csat_distribution(self, report) -> dict:
        return {str(score): count for score, count, _percent in report.csat_distribution}

    def get_nps_distribution(self, report) -> dict:
        return {str(score): count for score, count, _percent in report.nps_distribution}


PERIOD_PARAMS = [OpenApiParameter("from", OpenApiTypes.DATE, description="First day (agency time); default 90 days ago"),
                 OpenApiParameter("to", OpenApiTypes.DATE, description="Last day, included; default today")]


class SurveyViewSet(mixins.RetrieveModelMixin, AgencyViewSet):
    """Satisfaction surveys (read-only) and their report. For complaint handlers and report readers."""

    serializer_class = SurveyOutput
    required_caps = {"list": "authenticated", "retrieve": "authenticated", "report": "authenticated"}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # the fence: agency host, staff, declared actions
        if not selectors.can_see_surveys(request.user):
            raise PermissionDenied

    def agency_queryset(self):
        return Survey.objects.select_related("customer", "trip")

    @extend_schema(parameters=[OpenApiParameter("answered", OpenApiTypes.BOOL)], responses=SurveyOutput(many=True))
    def list(self, request):
        answered = request.query_params.get("answered")
        queryset = self.agency_queryset()
        if answered in ("true", "1", "false", "0"):
            queryset = queryset.filter(answered_at__isnull=answered in ("false", "0"))
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(SurveyOutput(page, many=True).data)

    @extend_schema(parameters=PERIOD_PARAMS, responses=SurveyReportOutput)
    @action(detail=False, methods=["get"])
    def report(self, request):
        period = PeriodInput(data=request.query_params)
        period.is_valid(raise_exception=True)
        report = selectors.survey_report(**period.validated_data)
        return Response(SurveyReportOutput(report).data)
