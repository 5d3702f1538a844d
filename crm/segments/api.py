"""Segments API (R-CAMP-1): saved segments, the live count of a definition, a segment's customers.

Thin: serializers read and render; ``crm.segments.services`` validates and writes (filter errors
come back keyed by filter name, e.g. ``{"age": ["The minimum is above the maximum."]}``).
"""
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.roles import Cap
from caravan.api.views import AgencyAPIView, AgencyViewSet
from caravan.api.writes import ServiceCreateMixin, ServiceUpdateMixin
from crm.customers.api import UserRef
from crm.customers.models import Customer

from . import selectors, services
from .models import Segment

DEFINITION_HELP = "The filters, all of which must hold; see docs/segments.md. {} selects every customer."


class SegmentOutput(serializers.ModelSerializer):
    created_by = UserRef(allow_null=True)

    class Meta:
        model = Segment
        fields = ["id", "name", "description", "definition", "created_by", "created_at", "updated_at",
                  "last_count", "last_counted_at"]


class SegmentInput(serializers.Serializer):
    name = serializers.CharField(allow_blank=True, trim_whitespace=False)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    definition = serializers.JSONField(help_text=DEFINITION_HELP)


class CountInput(serializers.Serializer):
    definition = serializers.JSONField(help_text=DEFINITION_HELP)


class CountOutput(serializers.Serializer):
    count = serializers.IntegerField()


class MemberOutput(serializers.ModelSerializer):
    latin_name = serializers.CharField(read_only=True)
    owner = UserRef(allow_null=True)

    class Meta:
        model = Customer
        fields = ["id", "kind", "name", "latin_name", "language", "owner", "tags"]


class SegmentViewSet(mixins.ListModelMixin, ServiceCreateMixin, ServiceUpdateMixin, AgencyViewSet):
    """Saved segments. A segment is re-evaluated every time it is used; ``last_count`` is the count at
    the last evaluation (reading one segment re-evaluates it)."""

    serializer_class = SegmentOutput
    input_serializer = SegmentInput
    required_caps = {"*": Cap.CAMPAIGNS_MANAGE}

    def agency_queryset(self):
        return selectors.segment_list()

    @extend_schema(responses=SegmentOutput)
    def retrieve(self, request, pk=None):
        segment = self.get_object()
        services.segment_evaluate(segment=segment)
        return Response(SegmentOutput(segment).data)

    def create_service(self, data):
        return services.segment_save(actor=self.request.user, **data)

    def update_service(self, segment, data):
        fields = {"name": segment.name, "description": segment.description, "definition": segment.definition, **data}
        return services.segment_save(actor=self.request.user, segment=segment, **fields)

    def destroy(self, request, pk=None):
        services.segment_delete(actor=request.user, segment=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=MemberOutput(many=True))
    @action(detail=True, methods=["get"], paginated=True)
    def customers(self, request, pk=None):
        """The segment's customers now (re-evaluated), by name, paginated."""
        segment = self.get_object()
        page = self.paginate_queryset(selectors.members(segment.definition))
        return self.get_paginated_response(MemberOutput(page, many=True).data)


class SegmentCountView(AgencyAPIView):
    """How many customers a definition selects now (the builder's live count). Nothing is saved."""

    required_caps = {"post": Cap.CAMPAIGNS_MANAGE}

    @extend_schema(request=CountInput, responses=CountOutput)
    def post(self, request):
        data = CountInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response({"count": selectors.segment_count(data.validated_data["definition"])})
