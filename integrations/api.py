"""Inventory API for agency staff (R-INT-2), under /api/v1/: search hotels and flights (the shared
inventory plus the agency's own rates), each result judged against a trip traveler's travel policy
when ``trip`` and ``traveler`` are given, and add a result to a trip's itinerary.

Thin: ``integrations.search`` does the work, as for the trip's "Search inventory" page. Money goes
out as strings next to its currency; ``total_local`` / ``price_local`` are in the agency's currency
(null when it has no exchange rate for the offer's currency)."""
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts.roles import Cap
from caravan.api.views import AgencyAPIView
from caravan.tenancy import require_agency
from crm.policies.api import AcceptLanguage, outcome_output
from crm.trips.api import ItemOutput
from crm.trips.models import Trip

from . import search


@extend_schema_field(OpenApiTypes.OBJECT)
class _Verdict(serializers.Field):
    """The policy check of the result (as ``POST /policy-check`` answers), or null."""

    def to_representation(self, outcome):
        return outcome_output(outcome) if outcome is not None else None


class HotelResultOutput(serializers.Serializer):
    key = serializers.CharField(help_text="What adding to a trip sends back.")
    hotel_code = serializers.CharField()
    name = serializers.CharField()
    chain = serializers.CharField()
    city_code = serializers.CharField()
    country = serializers.CharField()
    supplier = serializers.CharField()
    room_type = serializers.CharField()
    rate_plan = serializers.CharField()
    board = serializers.CharField(help_text="RO, BB, HB, FB, AI or empty.")
    nights = serializers.IntegerField()
    total = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)
    nightly = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)
    currency = serializers.CharField()
    total_local = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True, allow_null=True)
    own_rate = serializers.BooleanField(help_text="The agency's own negotiated rate.")
    verdict = _Verdict(read_only=True)


class FlightResultOutput(serializers.Serializer):
    offer = serializers.IntegerField(source="pk", help_text="What adding to a trip sends back.")
    offer_id = serializers.CharField(help_text="The supplier's offer id.")
    supplier = serializers.CharField()
    carrier = serializers.CharField()
    flight_numbers = serializers.CharField()
    origin = serializers.CharField()
    destination = serializers.CharField()
    departure = serializers.DateTimeField()
    arrival = serializers.DateTimeField()
    duration_minutes = serializers.IntegerField()
    stops = serializers.IntegerField()
    cabin = serializers.CharField()
    fare_brand = serializers.CharField()
    checked_bags = serializers.IntegerField()
    price = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)
    currency = serializers.CharField()
    price_local = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True, allow_null=True)
    own_rate = serializers.BooleanField()
    slices = serializers.JSONField()
    verdict = _Verdict(read_only=True)


class _Judged(serializers.Serializer):
    trip = serializers.IntegerField(required=False, help_text="With traveler: judge results against the policy "
                                                              "the traveler travels under on this trip.")
    traveler = serializers.IntegerField(required=False, help_text="A traveler (customer id) on the trip.")

    def validate(self, data):
        if "traveler" in data and "trip" not in data:
            raise serializers.ValidationError({"trip": [_("Give the trip the traveler travels on.")]})
        return data


def _trip_and_traveler(data: dict):
    if "trip" not in data:
        return None, None
    trip = Trip.objects.filter(pk=data["trip"]).first()  # this agency's trips only (its schema)
    if trip is None:
        raise serializers.ValidationError({"trip": [_("No such trip.")]})
    return trip, _traveler_on(trip, data.get("traveler"))


def _traveler_on(trip, customer_id):
    """The trip's traveler with this customer id (None when no id is given); a field error otherwise."""
    if customer_id is None:
        return None
    traveler = search.trip_traveler(trip, customer_id)
    if traveler is None:
        raise serializers.ValidationError({"traveler": [_("This person does not travel on the trip.")]})
    return traveler


def _answer(kind: str, query: serializers.Serializer, results: list, output) -> Response:
    trip, traveler = _trip_and_traveler(query.validated_data)
    note = search.with_verdicts(trip, traveler, kind, results) if trip is not None else None
    return Response({"currency": require_agency().currency, "policy_note": note,
                     "results": output(results, many=True).data})


def _params(names) -> list[OpenApiParameter]:
    return ([OpenApiParameter(name, OpenApiTypes.STR) for name in (*names, "sort")]
            + [OpenApiParameter("trip", OpenApiTypes.INT), OpenApiParameter("traveler", OpenApiTypes.INT)])


def _asked(request, names) -> dict:
    """The search's arguments from the query string (what is not given is empty; sort by price)."""
    return {**{name: request.query_params.get(name, "") for name in names},
            "sort": request.query_params.get("sort") or "price"}


class HotelSearchView(AcceptLanguage, AgencyAPIView):
    """``GET /api/v1/inventory/hotels/``: stays in a city for the dates, cheapest first (``sort``:
    price, -price, name); filters ``board``, ``chain``, ``max_nightly`` (agency currency), ``name``."""

    required_caps = {"get": Cap.PIPELINE_WORK}

    @extend_schema(parameters=_params(search.HOTEL_QUERY), responses=HotelResultOutput(many=True))
    def get(self, request):
        query = _Judged(data=request.query_params)
        query.is_valid(raise_exception=True)
        results = search.hotel_search(**_asked(request, search.HOTEL_QUERY))
        return _answer("hotel", query, results, HotelResultOutput)


class FlightSearchView(AcceptLanguage, AgencyAPIView):
    """``GET /api/v1/inventory/flights/``: offers from ``origin`` to ``destination`` (airport or city
    codes) departing on ``date``; filters ``cabin``, ``max_stops``, ``carrier``; ``sort`` price,
    departure or duration."""

    required_caps = {"get": Cap.PIPELINE_WORK}

    @extend_schema(parameters=_params(search.FLIGHT_QUERY), responses=FlightResultOutput(many=True))
    def get(self, request):
        query = _Judged(data=request.query_params)
        query.is_valid(raise_exception=True)
        asked = _asked(request, search.FLIGHT_QUERY)
        results = search.flight_search(day=asked.pop("date"), **asked)
        return _answer("flight", query, results, FlightResultOutput)


class AddInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["hotel", "flight"])
    key = serializers.CharField(required=False, allow_blank=True, default="", help_text="A hotel result's key.")
    check_in = serializers.DateField(required=False, allow_null=True, default=None)
    check_out = serializers.DateField(required=False, allow_null=True, default=None)
    offer = serializers.CharField(required=False, allow_blank=True, default="", help_text="A flight result's offer.")
    traveler = serializers.IntegerField(required=False, allow_null=True, default=None,
                                        help_text="Record the policy check for this traveler on the trip.")


class TripInventoryView(AcceptLanguage, AgencyAPIView):
    """``POST /api/v1/trips/{id}/inventory/``: add a search result to the trip's itinerary, priced again
    from the inventory (never from the request); with a traveler under a policy, the check is recorded
    (and an approval asked for when the policy says so). 201 with the item; 400 when the offer is gone."""

    required_caps = {"post": Cap.PIPELINE_WORK}

    @extend_schema(request=AddInput, responses={201: ItemOutput})
    def post(self, request, pk):
        trip = get_object_or_404(Trip, pk=pk)
        data = AddInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        traveler = _traveler_on(trip, values["traveler"])
        item = search.add_to_trip(actor=request.user, trip=trip, kind=values["kind"], key=values["key"],
                                  offer=values["offer"], check_in=values["check_in"], check_out=values["check_out"],
                                  traveler=traveler)
        return Response(ItemOutput(item).data, status=status.HTTP_201_CREATED)
