"""Service-tier API (R-TIER-1 … R-TIER-3): tiers, the tier rules, customers' tiers and overrides,
service-level clocks and the report.

Thin: input serializers read the request, ``crm.tiers.services`` / ``selectors`` do the work.
"""
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.roles import Cap
from caravan.api.fields import MoneyField
from caravan.api.periods import period_input
from caravan.api.views import AgencyAPIView, AgencyViewSet
from caravan.api.writes import ServiceCreateMixin, ServiceUpdateMixin
from crm.customers.api import CustomerRef, UserRef
from crm.customers.models import Customer

from . import selectors, services
from .models import CustomerTier, ServiceClock, ServiceTier, TierChange, TierSettings



PeriodInput = period_input(selectors.default_period)


class TierOutput(serializers.ModelSerializer):
    is_default = serializers.BooleanField(read_only=True)

    class Meta:
        model = ServiceTier
        fields = ["id", "name", "rank", "color", "applies_to", "min_spend_12m", "min_spend_month", "min_trips_12m",
                  "value_segments", "is_default", "dedicated_manager", "lead_response_hours", "request_response_hours",
                  "complaint_response_hours", "visit_cadence", "outreach_days", "perks"]


class TierInput(serializers.Serializer):
    """Types only; the rules (and their field errors) are ``services.tier_save``'s."""

    name = serializers.CharField(max_length=60)
    color = serializers.CharField(max_length=7, required=False)
    applies_to = serializers.ChoiceField(choices=ServiceTier.AppliesTo.choices, required=False)
    min_spend_12m = MoneyField(required=False, allow_null=True, min_value=0)
    min_spend_month = MoneyField(required=False, allow_null=True, min_value=0)
    min_trips_12m = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    value_segments = serializers.ListField(child=serializers.CharField(), required=False,
                                           help_text="Value segments the customer must be in (any of them); empty: any.")
    dedicated_manager = serializers.BooleanField(required=False)
    lead_response_hours = serializers.IntegerField(required=False, allow_null=True)
    request_response_hours = serializers.IntegerField(required=False, allow_null=True)
    complaint_response_hours = serializers.IntegerField(required=False, allow_null=True)
    visit_cadence = serializers.ChoiceField(choices=ServiceTier.Cadence.choices, required=False, allow_blank=True)
    outreach_days = serializers.IntegerField(required=False, allow_null=True)
    perks = serializers.CharField(required=False, allow_blank=True)


class TierMoveInput(serializers.Serializer):
    direction = serializers.ChoiceField(choices=[("up", "up"), ("down", "down")])


class ServiceTierViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceCreateMixin, ServiceUpdateMixin,
                         AgencyViewSet):
    """The agency's service tiers, highest first. Everyone reads them; admins and managers write."""

    serializer_class = TierOutput
    input_serializer = TierInput
    required_caps = {"list": "authenticated", "retrieve": "authenticated", "create": Cap.POLICIES_MANAGE,
                     "update": Cap.POLICIES_MANAGE, "partial_update": Cap.POLICIES_MANAGE,
                     "destroy": Cap.POLICIES_MANAGE, "move": Cap.POLICIES_MANAGE, "recompute": Cap.POLICIES_MANAGE}

    def agency_queryset(self):
        return ServiceTier.objects.order_by("rank")

    def create_service(self, data):
        return services.tier_save(actor=self.request.user, **data)

    def update_service(self, tier, data):
        return services.tier_save(actor=self.request.user, tier=tier, **data)

    def update(self, request, pk=None):  # PUT: every field, as on create
        tier = self.get_object()
        return self.answer(self.update_service(tier, self.validated()))

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.tier_delete(actor=request.user, tier=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=TierMoveInput, responses=TierOutput(many=True))
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        """Swap the tier with the one above or below it; answers the new order."""
        data = TierMoveInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.tier_move(actor=request.user, tier=self.get_object(), up=data.validated_data["direction"] == "up")
        return Response(TierOutput(self.agency_queryset(), many=True).data)

    @extend_schema(request=None, responses={202: None})
    @action(detail=False, methods=["post"])
    def recompute(self, request):
        """Queue the assignment now (it otherwise runs nightly)."""
        services.assignment_queue(actor=request.user)
        return Response(status=status.HTTP_202_ACCEPTED)


class TierSettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = TierSettings
        fields = ["hysteresis_percent", "min_days_in_tier", "notify_owner", "last_run_at"]
        read_only_fields = ["last_run_at"]
        # PUT replaces the rules: each is needed (an empty body was a TypeError, answered 500).
        extra_kwargs = {name: {"required": True} for name in ("hysteresis_percent", "min_days_in_tier", "notify_owner")}


class TierSettingsAPIView(AgencyAPIView):
    """The agency's tier rules: hysteresis margin, minimum days in a tier, owner notifications."""

    required_caps = {"get": Cap.POLICIES_MANAGE, "put": Cap.POLICIES_MANAGE}

    @extend_schema(responses=TierSettingsSerializer)
    def get(self, request):
        return Response(TierSettingsSerializer(services.tier_settings()).data)

    @extend_schema(request=TierSettingsSerializer, responses=TierSettingsSerializer)
    def put(self, request):
        data = TierSettingsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(TierSettingsSerializer(services.tier_settings_update(actor=request.user,
                                                                             **data.validated_data)).data)


class TierRef(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    rank = serializers.IntegerField()
    color = serializers.CharField()


class TierChangeOutput(serializers.ModelSerializer):
    by = UserRef(allow_null=True)

    class Meta:
        model = TierChange
        fields = ["id", "from_tier", "to_tier", "from_name", "to_name", "why", "note", "spend_12m", "spend_month",
                  "trips_12m", "by", "at"]


class CustomerTierOutput(serializers.Serializer):
    customer = CustomerRef()
    tier = TierRef(allow_null=True)
    since = serializers.DateTimeField(allow_null=True)
    computed_tier = TierRef(allow_null=True)
    spend_12m = serializers.DecimalField(max_digits=14, decimal_places=2)
    spend_month = serializers.DecimalField(max_digits=14, decimal_places=2)
    trips_12m = serializers.IntegerField()
    override_tier = TierRef(allow_null=True)
    override_reason = serializers.CharField()
    override_until = serializers.DateField(allow_null=True)
    override_by = UserRef(allow_null=True)
    history = TierChangeOutput(many=True)


class OverrideInput(serializers.Serializer):
    tier = serializers.PrimaryKeyRelatedField(queryset=ServiceTier.objects.all())
    reason = serializers.CharField(allow_blank=True, max_length=300)
    until = serializers.DateField(required=False, allow_null=True, help_text="Last day (agency time); none: until removed")


def _customer_tier_data(customer: Customer) -> dict:
    status = selectors.customer_tier(customer) or CustomerTier(customer=customer, since=None)
    return CustomerTierOutput({
        "customer": customer, "tier": status.tier, "since": status.since if status.tier_id else None,
        "computed_tier": status.computed_tier, "spend_12m": status.spend_12m, "spend_month": status.spend_month,
        "trips_12m": status.trips_12m, "override_tier": status.override_tier, "override_reason": status.override_reason,
        "override_until": status.override_until, "override_by": status.override_by,
        "history": selectors.tier_history(customer)}).data


class CustomerTierViewSet(AgencyViewSet):
    """A customer's tier (id = the customer's id), its history, and the manual override."""

    serializer_class = CustomerTierOutput
    required_caps = {"retrieve": Cap.CUSTOMERS_VIEW, "override": "authenticated"}

    def agency_queryset(self):
        return Customer.objects.filter(merged_into__isnull=True)

    @extend_schema(responses=CustomerTierOutput)
    def retrieve(self, request, pk=None):
        return Response(_customer_tier_data(self.get_object()))

    @extend_schema(methods=["POST"], request=OverrideInput, responses=CustomerTierOutput)
    @extend_schema(methods=["DELETE"], request=None, responses=CustomerTierOutput)
    @action(detail=True, methods=["post", "delete"])
    def override(self, request, pk=None):
        """POST: put the customer in a tier by hand (reason required; ``until`` in the future).
        DELETE: end the override. For ``policies.manage`` or ``pipeline.manage``."""
        if not services.can_override(request.user):
            raise PermissionDenied
        customer = self.get_object()
        if request.method == "DELETE":
            services.override_remove(actor=request.user, customer=customer)
        else:
            data = OverrideInput(data=request.data)
            data.is_valid(raise_exception=True)
            services.override_set(actor=request.user, customer=customer, **data.validated_data)
        return Response(_customer_tier_data(customer))


class ClockOutput(serializers.ModelSerializer):
    customer = CustomerRef()
    owner = UserRef(allow_null=True)
    responded_by = UserRef(allow_null=True)
    is_breached = serializers.BooleanField(read_only=True)

    class Meta:
        model = ServiceClock
        fields = ["id", "kind", "customer", "tier", "tier_name", "target_hours", "started_at", "due_at",
                  "responded_at", "responded_by", "owner", "is_breached", "opportunity", "complaint"]


class ClockFilterInput(serializers.Serializer):
    state = serializers.ChoiceField(choices=[(s, s) for s in selectors.CLOCK_STATES], required=False)
    kind = serializers.ChoiceField(choices=ServiceClock.Kind.choices, required=False)
    owner = serializers.IntegerField(required=False)
    customer = serializers.IntegerField(required=False)


class RowOutput(serializers.Serializer):
    key = serializers.CharField(allow_null=True)
    label = serializers.CharField()
    total = serializers.IntegerField(help_text="Due: answered, or past the target.")
    met = serializers.IntegerField()
    missed = serializers.IntegerField()
    attainment = serializers.FloatField(allow_null=True, help_text="Percent within target.")
    median_hours = serializers.FloatField(allow_null=True)


class ServiceLevelReportOutput(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    overall = RowOutput()
    pending = serializers.IntegerField()
    by_tier = RowOutput(many=True)
    by_kind = RowOutput(many=True)
    by_team = RowOutput(many=True)
    by_person = RowOutput(many=True)


class ServiceClockViewSet(AgencyViewSet):
    """First-response clocks: everyone's for managers, one's own otherwise; and the report."""

    serializer_class = ClockOutput
    required_caps = {"list": "authenticated", "retrieve": "authenticated", "report": "authenticated"}

    def agency_queryset(self):
        return selectors.clock_list(filters={}, user=self.request.user)

    @extend_schema(parameters=[ClockFilterInput], responses=ClockOutput(many=True))
    def list(self, request):
        filters = ClockFilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        page = self.paginate_queryset(selectors.clock_list(filters=filters.validated_data, user=request.user))
        return self.get_paginated_response(ClockOutput(page, many=True).data)

    @extend_schema(responses=ClockOutput)
    def retrieve(self, request, pk=None):
        return Response(ClockOutput(get_object_or_404(self.agency_queryset(), pk=pk)).data)

    @extend_schema(parameters=[OpenApiParameter("from", OpenApiTypes.DATE, description="First day; default 30 days ago"),
                               OpenApiParameter("to", OpenApiTypes.DATE, description="Last day, included; default today")],
                   responses=ServiceLevelReportOutput)
    @action(detail=False, methods=["get"])
    def report(self, request):
        """Attainment and median first response per tier, kind, team and person, for clocks started in the period."""
        if not selectors.can_see_report(request.user):
            raise PermissionDenied
        period = PeriodInput(data=request.query_params)
        period.is_valid(raise_exception=True)
        return Response(ServiceLevelReportOutput(selectors.service_level_report(**period.validated_data)).data)
