"""Customer-value API (R-VAL-1 … R-VAL-5): each customer's value, the summary behind the dashboard,
the early warnings, the settings and "recompute now".

Thin: ``crm.value.selectors`` and ``services`` do the work; the pages use the same functions.
"""
from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from accounts.roles import Cap
from caravan.api.views import AgencyAPIView, AgencyViewSet
from crm.customers.api import CustomerRef

from . import selectors, services
from .models import CustomerValue, LifetimeFit, ValueSettings, ValueWarning


class ValueOutput(serializers.ModelSerializer):
    customer = CustomerRef()
    rfm = serializers.CharField()
    strategy = serializers.SerializerMethodField()

    class Meta:
        model = CustomerValue
        fields = ["customer", "rfm", "r_score", "f_score", "m_score", "frequency", "monetary", "segment", "quadrant",
                  "strategy", "trips_total", "first_trip_at", "last_trip_at", "revenue_total", "margin_total",
                  "days_late", "late_payer", "p_alive", "expected_trips_12m", "expected_value_12m", "computed_at"]

    def get_strategy(self, row) -> str | None:
        return str(selectors.STRATEGIES[row.quadrant]) if row.r_score else None


class WarningOutput(serializers.ModelSerializer):
    customer = CustomerRef()

    class Meta:
        model = ValueWarning
        fields = ["id", "customer", "kind", "opened_at", "closed_at", "details", "task"]


class FitOutput(serializers.ModelSerializer):
    class Meta:
        model = LifetimeFit
        fields = ["fitted_at", "customers", "repeat_customers", "r", "alpha", "a", "b", "bg_log_likelihood", "p", "q",
                  "gamma", "gg_log_likelihood", "actual_repeat_trips", "expected_repeat_trips"]


class SettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = ValueSettings
        fields = ["window_months", "monetary_basis", "late_days", "spend_drop_share", "complaints_window_days",
                  "complaints_rise_min", "dormant_days", "at_risk_p_alive", "last_run_at"]
        read_only_fields = ["last_run_at"]


class CustomerValueViewSet(mixins.RetrieveModelMixin, AgencyViewSet):
    """``/value/customers/``: customers' value, filtered by segment or quadrant, most valuable first;
    ``/value/customers/<customer id>/``: one customer's."""

    serializer_class = ValueOutput
    required_caps = {"list": Cap.REPORTS_VIEW, "retrieve": Cap.VALUE_VIEW}
    lookup_field = "customer_id"

    def agency_queryset(self):
        return CustomerValue.objects.select_related("customer")

    @extend_schema(parameters=[OpenApiParameter("segment", str, enum=CustomerValue.Segment.values),
                               OpenApiParameter("quadrant", str, enum=CustomerValue.Quadrant.values)])
    def list(self, request):
        data = FilterInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        page = self.paginate_queryset(selectors.customers_in(**data.validated_data))
        return self.get_paginated_response(ValueOutput(page, many=True).data)


class FilterInput(serializers.Serializer):
    segment = serializers.ChoiceField(choices=CustomerValue.Segment.choices, required=False, default="")
    quadrant = serializers.ChoiceField(choices=CustomerValue.Quadrant.choices, required=False, default="")


class WarningViewSet(AgencyViewSet):
    """Early warnings: managers and report readers see everyone's, others their own customers'."""

    serializer_class = WarningOutput
    required_caps = {"list": Cap.VALUE_VIEW}

    def agency_queryset(self):
        return ValueWarning.objects.all()

    @extend_schema(parameters=[OpenApiParameter("kind", str, enum=ValueWarning.Kind.values),
                               OpenApiParameter("closed", bool, description="Include cleared warnings.")])
    def list(self, request):
        data = WarningFilterInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        user = request.user
        everyone = user.can(Cap.PIPELINE_MANAGE) or user.can(Cap.REPORTS_VIEW)
        rows = selectors.warning_list(kind=data.validated_data["kind"], owner=None if everyone else user,
                                      open_only=not data.validated_data["closed"])
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(WarningOutput(page, many=True).data)


class WarningFilterInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ValueWarning.Kind.choices, required=False, default="")
    closed = serializers.BooleanField(required=False, default=False)


class SummaryView(AgencyAPIView):
    """The numbers behind the value dashboard."""

    required_caps = {"get": Cap.REPORTS_VIEW}

    @extend_schema(responses=inline_serializer("ValueSummary", {
        "segments": serializers.ListField(child=serializers.DictField()),
        "quadrants": serializers.ListField(child=serializers.DictField()),
        "pareto": serializers.DictField(), "rfm_grid": serializers.ListField(child=serializers.ListField()),
        "warnings": serializers.DictField(), "fit": FitOutput(allow_null=True)}))
    def get(self, request):
        def plain(rows, drop=()):
            return [{k: (str(v) if k in ("label", "hint", "strategy") else v) for k, v in row.items() if k not in drop}
                    for row in rows]

        fit = LifetimeFit.objects.order_by("-fitted_at").first()
        return Response({
            "segments": plain(selectors.segment_summary()), "quadrants": plain(selectors.quadrant_summary()),
            "pareto": selectors.pareto(), "rfm_grid": selectors.rfm_grid(), "warnings": selectors.warning_counts(),
            "fit": FitOutput(fit).data if fit else None,
        })


class SettingsView(AgencyAPIView):
    """How value is measured and when warnings fire."""

    required_caps = {"get": Cap.SETTINGS_MANAGE, "patch": Cap.SETTINGS_MANAGE}

    @extend_schema(responses=SettingsSerializer)
    def get(self, request):
        return Response(SettingsSerializer(services.value_settings()).data)

    @extend_schema(request=SettingsSerializer, responses=SettingsSerializer)
    def patch(self, request):
        data = SettingsSerializer(services.value_settings(), data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            rules = services.settings_save(actor=request.user, **data.validated_data)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict)
        return Response(SettingsSerializer(rules).data)


class RecomputeView(AgencyAPIView):
    """Queue the value computation now (202); the figures change when the worker is done."""

    required_caps = {"post": Cap.REPORTS_VIEW}

    @extend_schema(request=None, responses={202: None})
    def post(self, request):
        services.value_queue(actor=request.user)
        return Response(status=status.HTTP_202_ACCEPTED)
