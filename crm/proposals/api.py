"""The proposals API, read-only: a trip's proposal versions and their acceptance (issue 21).

``GET /api/v1/trips/<id>/proposals/``: newest version first, one array (a trip has a handful). Whoever sees
trips (pipeline work or finance, the trips API's rule) reads them; the token's area is ``trips``.
"""
from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from caravan.api.views import AgencyAPIView
from crm.trips.api import VIEW_CAPS
from crm.trips.models import Trip

from . import selectors
from .models import Acceptance, Proposal


class AcceptanceOutput(serializers.ModelSerializer):
    class Meta:
        model = Acceptance
        fields = ["customer", "typed_name", "agreed", "at", "address", "user_agent", "content_hash"]
        read_only_fields = fields


class ProposalOutput(serializers.ModelSerializer):
    sent_by = serializers.SlugRelatedField(slug_field="email", read_only=True, allow_null=True)
    acceptance = AcceptanceOutput(read_only=True, allow_null=True, help_text="Null until the customer accepts.")
    snapshot = serializers.JSONField(read_only=True, help_text="What the customer was shown, frozen at sending.")

    class Meta:
        model = Proposal
        fields = ["id", "version", "content_hash", "sent_at", "sent_by", "recipient", "recipient_email", "message",
                  "valid_until", "superseded_at", "snapshot", "acceptance"]
        read_only_fields = fields


class TripProposalsView(AgencyAPIView):
    """A trip's proposal versions, newest first, each with its acceptance."""

    api_area = "trips"
    required_caps = {"get": "authenticated"}  # seeing trips: pipeline work or finance (checked below)

    @extend_schema(responses=ProposalOutput(many=True))
    def get(self, request, pk: int):
        if not any(request.user.can(cap) for cap in VIEW_CAPS):
            raise PermissionDenied
        trip = Trip.objects.filter(pk=pk).first()
        if trip is None:
            raise Http404
        return Response(ProposalOutput(selectors.versions(trip), many=True).data)
