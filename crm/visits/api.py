"""Key-account visits API (R-TIER-4): visit plans, visit records and the report.

Thin: input serializers read the request, ``crm.visits.services`` / ``selectors`` do the work.
"""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import User
from accounts.roles import Cap
from caravan.api.periods import period_input
from caravan.api.views import AgencyViewSet
from caravan.api.writes import ServiceCreateMixin, ServiceUpdateMixin
from crm.customers.api import CustomerRef, UserRef
from crm.customers.models import Customer
from crm.pipeline.models import Task

from . import selectors, services
from .models import Visit, VisitPlan

LIVE_CUSTOMERS = Customer.objects.filter(merged_into__isnull=True)
ACTIVE_STAFF = User.objects.filter(is_active=True, is_operator=False)


PeriodInput = period_input(selectors.default_period)


class PlanOutput(serializers.ModelSerializer):
    account = CustomerRef()
    owner = UserRef()

    class Meta:
        model = VisitPlan
        fields = ["id", "account", "owner", "cadence", "weekday", "week_of_month", "time_of_day", "duration_minutes",
                  "starts_on", "ends_on", "location", "notes", "active", "created_at"]


class PlanInput(serializers.Serializer):
    account = serializers.PrimaryKeyRelatedField(queryset=LIVE_CUSTOMERS)
    owner = serializers.PrimaryKeyRelatedField(queryset=ACTIVE_STAFF)
    cadence = serializers.ChoiceField(choices=VisitPlan.Cadence.choices)
    weekday = serializers.ChoiceField(choices=VisitPlan.Weekday.choices, help_text="0 = Monday … 6 = Sunday")
    week_of_month = serializers.ChoiceField(choices=VisitPlan.WeekOfMonth.choices, required=False, allow_null=True,
                                            help_text="Monthly plans: 1–4, or 5 for the last.")
    time_of_day = serializers.TimeField(help_text="In the agency's time zone.")
    duration_minutes = serializers.IntegerField(required=False, default=60)
    starts_on = serializers.DateField()
    ends_on = serializers.DateField(required=False, allow_null=True)
    location = serializers.CharField(required=False, allow_blank=True, default="")
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    active = serializers.BooleanField(required=False, default=True)


class VisitOutput(serializers.ModelSerializer):
    account = CustomerRef()
    owner = UserRef(allow_null=True)
    staff = UserRef(many=True)
    met_people = CustomerRef(many=True)
    is_executive = serializers.BooleanField(read_only=True)

    class Meta:
        model = Visit
        fields = ["id", "account", "plan", "task", "owner", "visited_at", "staff", "met_people", "met_others",
                  "executive_ours", "executive_theirs", "is_executive", "topics", "concerns", "next_steps",
                  "next_step_due", "satisfaction", "created_at"]


class VisitInput(serializers.Serializer):
    account = serializers.PrimaryKeyRelatedField(queryset=LIVE_CUSTOMERS)
    visited_at = serializers.DateTimeField()
    staff = serializers.PrimaryKeyRelatedField(queryset=ACTIVE_STAFF, many=True)
    met_people = serializers.PrimaryKeyRelatedField(queryset=LIVE_CUSTOMERS, many=True, required=False, default=list)
    met_others = serializers.CharField(required=False, allow_blank=True, default="")
    executive_ours = serializers.BooleanField(required=False, default=False)
    executive_theirs = serializers.BooleanField(required=False, default=False)
    topics = serializers.CharField(allow_blank=True)
    concerns = serializers.CharField(required=False, allow_blank=True, default="")
    next_steps = serializers.CharField(required=False, allow_blank=True, default="")
    next_step_due = serializers.DateField(required=False, allow_null=True, default=None)
    satisfaction = serializers.IntegerField(required=False, allow_null=True, default=None)
    task = serializers.PrimaryKeyRelatedField(queryset=Task.objects.filter(kind=Task.Kind.VISIT), required=False,
                                              allow_null=True, default=None, help_text="The planned slot, if known.")


class PlanViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceCreateMixin, ServiceUpdateMixin,
                  AgencyViewSet):
    """Visit plans: a fixed visit slot per key account and visitor. Saving one (re)makes its slot tasks."""

    serializer_class = PlanOutput
    input_serializer = PlanInput
    required_caps = {action: Cap.PIPELINE_WORK for action in ("list", "create", "retrieve", "partial_update")}

    def agency_queryset(self):
        return selectors.plan_list(user=self.request.user)

    def create_service(self, data):
        return services.plan_save(actor=self.request.user, **data)

    def update_service(self, plan, data):
        return services.plan_save(actor=self.request.user, plan=plan, **data)


class VisitReportOutput(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    planned = serializers.IntegerField()
    held = serializers.IntegerField()
    missed = serializers.IntegerField()
    visits = serializers.IntegerField()
    executive = serializers.IntegerField()
    by_owner = serializers.ListField(child=serializers.DictField())
    by_account = serializers.ListField(child=serializers.DictField())


class VisitViewSet(mixins.RetrieveModelMixin, ServiceCreateMixin, AgencyViewSet):
    """Visit records; recording one completes its slot, writes the account's timeline and the follow-up task."""

    serializer_class = VisitOutput
    input_serializer = VisitInput
    reread = True
    required_caps = {"list": Cap.CUSTOMERS_VIEW, "retrieve": Cap.CUSTOMERS_VIEW, "create": Cap.PIPELINE_WORK,
                     "report": Cap.PIPELINE_WORK}

    def agency_queryset(self):
        return selectors.visit_list()

    @extend_schema(parameters=[OpenApiParameter("account", int)], responses=VisitOutput(many=True))
    def list(self, request):
        queryset = self.agency_queryset()
        account = request.query_params.get("account", "")
        if account:
            queryset = queryset.filter(account_id=account) if account.isdigit() else queryset.none()
        return self.get_paginated_response(VisitOutput(self.paginate_queryset(queryset), many=True).data)

    def create_service(self, data):
        return services.visit_record(actor=self.request.user, **data)

    @extend_schema(parameters=[OpenApiParameter("from", OpenApiTypes.DATE), OpenApiParameter("to", OpenApiTypes.DATE)],
                   responses=VisitReportOutput)
    @action(detail=False, methods=["get"])
    def report(self, request):
        """Planned, held and missed slots and visits recorded (yours; everyone's for managers)."""
        period = PeriodInput(data=request.query_params)
        period.is_valid(raise_exception=True)
        mine = None if selectors.sees_all(request.user) else request.user
        report = selectors.visit_report(owner=mine, **period.validated_data)
        return Response(VisitReportOutput(report).data)
