"""Trips API (R-SALE-3 … 5): trips and their status, travelers, itinerary items, payments and the
visa document checklist; "prepare quote" on an opportunity.

Thin: serializers read the request, ``crm.trips.services`` / ``selectors`` do the work. Money goes
out as strings ("1234.50") next to a ``currency``, and comes in as strings too (the service refuses
floats and exponents rather than rounding them).
"""
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import User
from accounts.roles import Cap
from caravan.api.views import AgencyAPIView, AgencyViewSet
from caravan.api.writes import ServiceUpdateMixin
from crm.customers.api import CustomerRef, UserRef
from crm.customers.models import Customer
from crm.pipeline.models import Opportunity

from . import selectors, services
from .models import ChecklistItem, ItineraryItem, Payment, Traveler, Trip

VIEW_CAPS = (Cap.PIPELINE_WORK, Cap.PAYMENTS_VIEW)


def _money(value) -> str:
    return f"{value:.2f}"


# --- output ---------------------------------------------------------------------------------------

class MoneyOutput(serializers.Serializer):
    currency = serializers.CharField()
    sell = serializers.CharField(help_text='Total sell price, e.g. "1234.50".')
    paid = serializers.CharField(help_text="Deposits and balances minus refunds.")
    due = serializers.CharField()
    state = serializers.CharField(help_text="paid, due, overdue, or empty (cancelled, or nothing to pay).")


class TripOutput(serializers.ModelSerializer):
    reference = serializers.CharField()
    customer = CustomerRef()
    owner = UserRef(allow_null=True)
    money = serializers.SerializerMethodField()

    class Meta:
        model = Trip
        fields = ["id", "reference", "title", "destination", "depart_on", "return_on", "status", "currency",
                  "needs_visa", "balance_due_on", "customer", "owner", "opportunity", "notes", "created_at",
                  "confirmed_at", "completed_at", "cancelled_at", "cancel_reason", "money"]

    @staticmethod
    def _state(trip) -> dict:
        return {"currency": trip.currency, "sell": _money(trip.sell_total), "paid": _money(trip.paid_total),
                "due": _money(trip.due_total), "state": trip.payment_state}

    @extend_schema_field(MoneyOutput)
    def get_money(self, trip) -> dict:
        return self._state(trip)


class TripDetailOutput(TripOutput):
    """One trip, with cost and margin for those who work trips."""

    @extend_schema_field(MoneyOutput)
    def get_money(self, trip) -> dict:
        money = selectors.trip_money(trip)
        data = {"currency": money["currency"], "sell": _money(money["sell"]), "paid": _money(money["paid"]),
                "due": _money(money["due"]), "state": money["state"]}
        if self.context["request"].user.can(Cap.PIPELINE_WORK):
            data.update(cost=_money(money["cost"]), margin=_money(money["margin"]),
                        margin_pct=None if money["margin_pct"] is None else _money(money["margin_pct"]))
        return data


class ItemOutput(serializers.ModelSerializer):
    cost = serializers.SerializerMethodField()
    sell = serializers.SerializerMethodField()
    margin = serializers.SerializerMethodField()
    currency = serializers.CharField(source="trip.currency")

    class Meta:
        model = ItineraryItem
        fields = ["id", "kind", "description", "supplier", "starts_on", "ends_on", "confirmation", "cost", "sell",
                  "margin", "currency", "details"]

    def get_cost(self, item) -> str:
        return _money(item.cost)

    def get_sell(self, item) -> str:
        return _money(item.sell)

    def get_margin(self, item) -> str:
        return _money(item.margin)


class ChecklistOutput(serializers.ModelSerializer):
    changed_by = UserRef(allow_null=True)

    class Meta:
        model = ChecklistItem
        fields = ["id", "traveler", "document", "label", "status", "received_at", "returned_at", "note", "changed_by"]


class TravelerOutput(serializers.ModelSerializer):
    customer = CustomerRef()
    company = CustomerRef(allow_null=True)

    class Meta:
        model = Traveler
        fields = ["id", "customer", "company", "is_lead", "visa_cancellation"]


class PaymentOutput(serializers.ModelSerializer):
    amount = serializers.SerializerMethodField()
    refundable = serializers.SerializerMethodField(help_text="What can still be refunded; null for a refund.")
    recorded_by = UserRef(allow_null=True)

    class Meta:
        model = Payment
        fields = ["id", "kind", "amount", "currency", "method", "received_on", "reference", "note", "refund_of",
                  "refundable", "recorded_by", "recorded_at"]

    def get_amount(self, payment) -> str:
        return _money(payment.amount)

    def get_refundable(self, payment) -> str | None:
        left = getattr(payment, "left", None)
        if left is None and not payment.refund_of_id:
            left = services.refundable(payment)
        return None if left is None else _money(left)


# --- input ----------------------------------------------------------------------------------------

def _staff():
    return User.objects.filter(is_active=True)


class TripInput(serializers.Serializer):
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all())  # merged away: 409 (services)
    title = serializers.CharField(max_length=200)
    destination = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    depart_on = serializers.DateField(required=False, allow_null=True, default=None)
    return_on = serializers.DateField(required=False, allow_null=True, default=None)
    balance_due_on = serializers.DateField(required=False, allow_null=True, default=None)
    owner = serializers.PrimaryKeyRelatedField(queryset=_staff(), required=False, allow_null=True, default=None)
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class TripUpdateInput(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    destination = serializers.CharField(max_length=120, required=False, allow_blank=True)
    depart_on = serializers.DateField(required=False, allow_null=True)
    return_on = serializers.DateField(required=False, allow_null=True)
    balance_due_on = serializers.DateField(required=False, allow_null=True)
    owner = serializers.PrimaryKeyRelatedField(queryset=_staff(), required=False, allow_null=True)
    needs_visa = serializers.BooleanField(required=False)
    notes = serializers.CharField(required=False, allow_blank=True)


class TripFilterInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=Trip.Status.choices, required=False)
    owner = serializers.IntegerField(required=False)
    depart_from = serializers.DateField(required=False)
    depart_to = serializers.DateField(required=False)
    payment = serializers.ChoiceField(choices=["paid", "due", "overdue"], required=False)
    customer = serializers.IntegerField(required=False, help_text="As the one who books or as a traveler.")
    documents = serializers.ChoiceField(choices=["outstanding"], required=False)


class CancelInput(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class ItemInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ItineraryItem.Kind.choices)
    description = serializers.CharField(max_length=300)
    supplier = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    starts_on = serializers.DateField(required=False, allow_null=True, default=None)
    ends_on = serializers.DateField(required=False, allow_null=True, default=None)
    confirmation = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")
    cost = serializers.CharField(required=False, default="0", help_text='A string such as "1234.50".')
    sell = serializers.CharField(required=False, default="0", help_text='A string such as "1234.50".')
    details = serializers.DictField(required=False, default=dict,
                                    help_text="Flights: carrier, number, from_airport, to_airport; hotels: room_type, board.")

    def to_internal_value(self, data):
        # A JSON number would arrive here as a float: refuse it rather than format it into a string.
        for name in ("cost", "sell"):
            if isinstance(data, dict) and isinstance(data.get(name), float):
                raise serializers.ValidationError({name: ["Send money as a string, e.g. \"1234.50\"."]})
        return super().to_internal_value(data)


class TravelerInput(serializers.Serializer):
    customer = serializers.IntegerField(help_text="A person's customer id.")
    is_lead = serializers.BooleanField(required=False, default=False)


class PaymentInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Payment.Kind.choices)
    amount = serializers.JSONField(help_text='A string such as "1234.50" (numbers with a fraction are refused).')
    method = serializers.ChoiceField(choices=Payment.Method.choices)
    received_on = serializers.DateField()
    reference = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    refund_of = serializers.IntegerField(required=False, allow_null=True, default=None)


class ChecklistStatusInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=ChecklistItem.Status.choices)
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, allow_null=True, default=None)


class ChecklistAddInput(serializers.Serializer):
    traveler = serializers.IntegerField()
    document = serializers.ChoiceField(choices=ChecklistItem.Document.choices)
    label = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")


# --- views ----------------------------------------------------------------------------------------

def _can_view(user) -> None:
    if not any(user.can(cap) for cap in VIEW_CAPS):
        raise PermissionDenied


class TripViewSet(AgencyViewSet):
    """Trips: quotes, orders, completed and cancelled trips."""

    serializer_class = TripOutput
    required_caps = {
        # Seeing trips: pipeline work or finance (checked in the view); writing: pipeline work.
        "list": "authenticated", "retrieve": "authenticated", "payments": "authenticated",
        "items": "authenticated", "travelers": "authenticated", "checklist": "authenticated",
        "create": Cap.PIPELINE_WORK, "partial_update": Cap.PIPELINE_WORK, "update": Cap.PIPELINE_WORK,
        "confirm": Cap.PIPELINE_WORK, "complete": Cap.PIPELINE_WORK, "cancel": Cap.PIPELINE_WORK,
        "items_add": Cap.PIPELINE_WORK, "travelers_add": Cap.PIPELINE_WORK, "checklist_add": Cap.PIPELINE_WORK,
        "payments_add": Cap.PAYMENTS_RECORD,
    }

    def agency_queryset(self):
        return Trip.objects.select_related("customer", "owner")

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        _can_view(request.user)

    def _detail(self, trip, code=status.HTTP_200_OK):
        trip = selectors.with_money(self.agency_queryset()).get(pk=trip.pk)
        return Response(TripDetailOutput(trip, context=self.get_serializer_context()).data, status=code)

    @extend_schema(parameters=[OpenApiParameter(name, str) for name in TripFilterInput().fields],
                   responses=TripOutput(many=True))
    def list(self, request):
        data = TripFilterInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        trips = selectors.trip_list(filters=data.validated_data).order_by("depart_on", "id")
        page = self.paginate_queryset(trips)
        return self.get_paginated_response(TripOutput(page, many=True).data)

    @extend_schema(request=TripInput, responses={201: TripDetailOutput})
    def create(self, request):
        data = TripInput(data=request.data)
        data.is_valid(raise_exception=True)
        return self._detail(services.trip_create(actor=request.user, **data.validated_data), status.HTTP_201_CREATED)

    @extend_schema(responses=TripDetailOutput)
    def retrieve(self, request, pk=None):
        return self._detail(self.get_object())

    @extend_schema(request=TripUpdateInput, responses=TripDetailOutput)
    def partial_update(self, request, pk=None):
        trip = self.get_object()
        data = TripUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return self._detail(services.trip_update(actor=request.user, trip=trip, **data.validated_data))

    @extend_schema(request=TripUpdateInput, responses=TripDetailOutput)
    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    @extend_schema(request=None, responses=TripDetailOutput)
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        """Quote → order (an open opportunity is won with it)."""
        return self._detail(services.trip_confirm(actor=request.user, trip=self.get_object()))

    @extend_schema(request=None, responses=TripDetailOutput)
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        return self._detail(services.trip_complete(actor=request.user, trip=self.get_object()))

    @extend_schema(request=CancelInput, responses=TripDetailOutput)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        trip = self.get_object()
        data = CancelInput(data=request.data)
        data.is_valid(raise_exception=True)
        return self._detail(services.trip_cancel(actor=request.user, trip=trip, **data.validated_data))

    # items
    @extend_schema(responses=ItemOutput(many=True))
    @action(detail=True, methods=["get"])
    def items(self, request, pk=None):
        return Response(ItemOutput(self.get_object().items.select_related("trip"), many=True).data)

    @extend_schema(request=ItemInput, responses={201: ItemOutput})
    @items.mapping.post
    def items_add(self, request, pk=None):
        trip = self.get_object()
        data = ItemInput(data=request.data)
        data.is_valid(raise_exception=True)
        item = services.item_add(actor=request.user, trip=trip, **data.validated_data)
        return Response(ItemOutput(item).data, status=status.HTTP_201_CREATED)

    # travelers
    @extend_schema(responses=TravelerOutput(many=True))
    @action(detail=True, methods=["get"])
    def travelers(self, request, pk=None):
        trip = self.get_object()
        return Response(TravelerOutput(trip.travelers.select_related("customer", "company"), many=True).data)

    @extend_schema(request=TravelerInput, responses={201: TravelerOutput})
    @travelers.mapping.post
    def travelers_add(self, request, pk=None):
        trip = self.get_object()
        data = TravelerInput(data=request.data)
        data.is_valid(raise_exception=True)
        customer = get_object_or_404(Customer, pk=data.validated_data["customer"])
        traveler = services.traveler_add(actor=request.user, trip=trip, customer=customer,
                                         is_lead=data.validated_data["is_lead"])
        return Response(TravelerOutput(traveler).data, status=status.HTTP_201_CREATED)

    # payments
    @extend_schema(responses=PaymentOutput(many=True))
    @action(detail=True, methods=["get"])
    def payments(self, request, pk=None):
        if not request.user.can(Cap.PAYMENTS_VIEW):
            raise PermissionDenied
        return Response(PaymentOutput(selectors.trip_payments(self.get_object()), many=True).data)

    @extend_schema(request=PaymentInput, responses={201: PaymentOutput})
    @payments.mapping.post
    def payments_add(self, request, pk=None):
        trip = self.get_object()
        data = PaymentInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        refund_of = values.pop("refund_of")
        if refund_of is not None:
            refund_of = Payment.objects.filter(pk=refund_of).first()
            if refund_of is None:
                raise serializers.ValidationError({"refund_of": ["No such payment."]})
        payment = services.payment_record(actor=request.user, trip=trip, refund_of=refund_of, **values)
        return Response(PaymentOutput(payment).data, status=status.HTTP_201_CREATED)

    # checklist
    @extend_schema(responses=ChecklistOutput(many=True))
    @action(detail=True, methods=["get"])
    def checklist(self, request, pk=None):
        trip = self.get_object()
        items = ChecklistItem.objects.filter(traveler__trip=trip).select_related("changed_by").order_by("traveler", "id")
        return Response(ChecklistOutput(items, many=True).data)

    @extend_schema(request=ChecklistAddInput, responses={201: ChecklistOutput})
    @checklist.mapping.post
    def checklist_add(self, request, pk=None):
        trip = self.get_object()
        data = ChecklistAddInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        traveler = get_object_or_404(Traveler, pk=values.pop("traveler"), trip=trip)
        item = services.checklist_item_add(actor=request.user, traveler=traveler, **values)
        return Response(ChecklistOutput(item).data, status=status.HTTP_201_CREATED)


class ItemViewSet(ServiceUpdateMixin, AgencyViewSet):
    """One itinerary item: change or remove it while the trip is live."""

    serializer_class = ItemOutput
    input_serializer = ItemInput
    required_caps = {"partial_update": Cap.PIPELINE_WORK, "destroy": Cap.PIPELINE_WORK}

    def agency_queryset(self):
        return ItineraryItem.objects.select_related("trip")

    def update_service(self, item, data):
        return services.item_update(actor=self.request.user, item=item, **data)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.item_remove(actor=request.user, item=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class VisaCancellationInput(serializers.Serializer):
    visa_cancellation = serializers.ChoiceField(choices=[Traveler.VisaCancellation.RECEIVED,
                                                         Traveler.VisaCancellation.DONE])


class TravelerViewSet(AgencyViewSet):
    """One traveler: remove them, make them the lead, or move the post-trip visa cancellation on."""

    required_caps = {"destroy": Cap.PIPELINE_WORK, "lead": Cap.PIPELINE_WORK, "visa_cancellation": Cap.PIPELINE_WORK}

    def agency_queryset(self):
        return Traveler.objects.select_related("trip", "customer", "company")

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.traveler_remove(actor=request.user, traveler=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=TravelerOutput)
    @action(detail=True, methods=["post"])
    def lead(self, request, pk=None):
        return Response(TravelerOutput(services.traveler_set_lead(actor=request.user, traveler=self.get_object())).data)

    @extend_schema(request=VisaCancellationInput, responses=TravelerOutput)
    @action(detail=True, methods=["post"], url_path="visa-cancellation")
    def visa_cancellation(self, request, pk=None):
        traveler = self.get_object()
        data = VisaCancellationInput(data=request.data)
        data.is_valid(raise_exception=True)
        traveler = services.visa_cancellation_advance(actor=request.user, traveler=traveler,
                                                      to=data.validated_data["visa_cancellation"])
        return Response(TravelerOutput(traveler).data)


class ChecklistItemViewSet(AgencyViewSet):
    """One document of a traveler's visa checklist: move its status, or remove it."""

    required_caps = {"set_status": Cap.PIPELINE_WORK, "destroy": Cap.PIPELINE_WORK}

    def agency_queryset(self):
        return ChecklistItem.objects.select_related("traveler__trip", "changed_by")

    @extend_schema(request=ChecklistStatusInput, responses=ChecklistOutput)
    @action(detail=True, methods=["post"], url_path="status", url_name="status")
    def set_status(self, request, pk=None):
        item = self.get_object()
        data = ChecklistStatusInput(data=request.data)
        data.is_valid(raise_exception=True)
        item = services.checklist_item_set_status(actor=request.user, item=item, **data.validated_data)
        return Response(ChecklistOutput(item).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.checklist_item_remove(actor=request.user, item=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class OpportunityQuoteView(AgencyAPIView):
    """"Prepare quote": the opportunity's trip in status quote (201), copied from its fields."""

    required_caps = {"post": Cap.PIPELINE_WORK}

    @extend_schema(request=None, responses={201: TripDetailOutput})
    def post(self, request, pk):
        opportunity = get_object_or_404(Opportunity, pk=pk)
        trip = services.quote_from_opportunity(actor=request.user, opportunity=opportunity)
        trip = selectors.with_money(Trip.objects.select_related("customer", "owner")).get(pk=trip.pk)
        return Response(TripDetailOutput(trip, context={"request": request}).data, status=status.HTTP_201_CREATED)
