"""Care-automation API (R-CARE-3 … 5, R-CAMP-4): occasions, the greeting log, holiday suggestions,
win-back cases, referrals.

Thin: input serializers read the request, ``crm.loyalty.services`` / ``selectors`` do the work.
"""
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.roles import Cap
from caravan.api.fields import MoneyField
from caravan.api.views import AgencyViewSet
from caravan.api.writes import ServiceCreateMixin, ServiceUpdateMixin
from crm.customers.api import CustomerRef, UserRef
from crm.customers.festivals import FESTIVAL_CHOICES
from crm.customers.models import Customer

from . import selectors, services
from .models import Greeting, Occasion, Referral, Suggestion, WinBack

LIVE_CUSTOMERS = Customer.objects.filter(merged_into__isnull=True)
WORK = Cap.PIPELINE_WORK  # every role that handles care cases also works the pipeline


def _id_param(request, name: str) -> int | None | bool:
    """An optional numeric query parameter: its value, None when absent, False when malformed."""
    raw = request.query_params.get(name, "")
    if not raw:
        return None
    return int(raw) if raw.isdigit() else False


# --- occasions and greetings ----------------------------------------------------------------------

class OccasionOutput(serializers.ModelSerializer):
    greeted = serializers.IntegerField(read_only=True)

    class Meta:
        model = Occasion
        fields = ["id", "name", "kind", "festival", "month", "day", "days_before", "subject_zh", "body_zh",
                  "subject_en", "body_en", "send_email", "make_task", "active", "greeted", "created_at"]


class OccasionInput(serializers.Serializer):
    name = serializers.CharField(allow_blank=True)
    kind = serializers.ChoiceField(choices=Occasion.Kind.choices)
    festival = serializers.ChoiceField(choices=FESTIVAL_CHOICES, required=False, allow_blank=True, default="")
    month = serializers.IntegerField(required=False, allow_null=True, default=None)
    day = serializers.IntegerField(required=False, allow_null=True, default=None)
    days_before = serializers.IntegerField(required=False, default=0)
    subject_zh = serializers.CharField(required=False, allow_blank=True, default="")
    body_zh = serializers.CharField(required=False, allow_blank=True, default="")
    subject_en = serializers.CharField(required=False, allow_blank=True, default="")
    body_en = serializers.CharField(required=False, allow_blank=True, default="")
    send_email = serializers.BooleanField(required=False, default=True)
    make_task = serializers.BooleanField(required=False, default=False)
    active = serializers.BooleanField(required=False, default=True)


class OccasionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceCreateMixin, ServiceUpdateMixin,
                      AgencyViewSet):
    """What customers are greeted for: birthdays, family dates, festivals, fixed days. Texts may use
    the personal fields {{ name }}, {{ occasion }}, {{ agency_name }}, {{ owner_name }}."""

    serializer_class = OccasionOutput
    input_serializer = OccasionInput
    reread = True
    required_caps = {"list": WORK, "retrieve": WORK, "create": Cap.CAMPAIGNS_MANAGE,
                     "partial_update": Cap.CAMPAIGNS_MANAGE}

    def agency_queryset(self):
        return selectors.occasion_list()

    def create_service(self, data):
        return services.occasion_save(actor=self.request.user, **data)

    def update_service(self, occasion, data):
        return services.occasion_save(actor=self.request.user, occasion=occasion, **data)


class GreetingOutput(serializers.ModelSerializer):
    customer = CustomerRef()
    occasion = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Greeting
        fields = ["id", "customer", "occasion", "occasion_date", "label", "channel", "language", "email", "subject",
                  "sent_at", "task", "created_at"]


class GreetingViewSet(AgencyViewSet):
    """The greeting log: who was greeted for what, by e-mail and/or a task for the account manager."""

    serializer_class = GreetingOutput
    required_caps = {"list": WORK}

    def agency_queryset(self):
        return selectors.greeting_log()

    @extend_schema(parameters=[OpenApiParameter("customer", int), OpenApiParameter("occasion", int)],
                   responses=GreetingOutput(many=True))
    def list(self, request):
        queryset = self.agency_queryset()
        for name in ("customer", "occasion"):
            value = _id_param(request, name)
            if value is False:
                queryset = queryset.none()
            elif value is not None:
                queryset = queryset.filter(**{f"{name}_id": value})
        return self.get_paginated_response(GreetingOutput(self.paginate_queryset(queryset), many=True).data)


# --- holiday suggestions --------------------------------------------------------------------------

class SuggestionOutput(serializers.ModelSerializer):
    customer = CustomerRef()
    closed_by = UserRef(allow_null=True)

    class Meta:
        model = Suggestion
        fields = ["id", "customer", "festival", "year", "break_starts_on", "break_ends_on", "last_trip",
                  "last_destination", "last_departed_on", "destinations", "status", "opportunity", "task",
                  "created_at", "closed_at", "closed_by"]


class LeadInput(serializers.Serializer):
    destination = serializers.CharField(required=False, allow_blank=True, default="",
                                        help_text="Empty: the first suggested destination.")
    depart_on = serializers.DateField(required=False, allow_null=True, default=None,
                                      help_text="Empty: the first day of this year's break.")
    return_on = serializers.DateField(required=False, allow_null=True, default=None)
    message = serializers.CharField(required=False, allow_blank=True, default="")


class LeadOutput(serializers.Serializer):
    opportunity = serializers.IntegerField(source="pk")
    title = serializers.CharField()


class SuggestionViewSet(mixins.RetrieveModelMixin, AgencyViewSet):
    """"Last year you travelled at this holiday": made daily before each festival's break (R-CAMP-4)."""

    serializer_class = SuggestionOutput
    required_caps = {"list": WORK, "retrieve": WORK, "dismiss": WORK, "lead": WORK}

    def agency_queryset(self):
        return selectors.suggestion_list(user=self.request.user, status="")

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=Suggestion.Status.values),
                               OpenApiParameter("customer", int)], responses=SuggestionOutput(many=True))
    def list(self, request):
        queryset = self.agency_queryset()
        if request.query_params.get("status"):
            queryset = queryset.filter(status=request.query_params["status"])
        customer = _id_param(request, "customer")
        if customer is False:
            queryset = queryset.none()
        elif customer is not None:
            queryset = queryset.filter(customer_id=customer)
        return self.get_paginated_response(SuggestionOutput(self.paginate_queryset(queryset), many=True).data)

    @extend_schema(request=None, responses=SuggestionOutput)
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        suggestion = services.suggestion_dismiss(actor=request.user, suggestion=self.get_object())
        return Response(SuggestionOutput(self.agency_queryset().get(pk=suggestion.pk)).data)

    @extend_schema(request=LeadInput, responses={201: LeadOutput})
    @action(detail=True, methods=["post"])
    def lead(self, request, pk=None):
        """Turn the suggestion into a lead in the pipeline."""
        suggestion = self.get_object()
        data = LeadInput(data=request.data)
        data.is_valid(raise_exception=True)
        opportunity = services.suggestion_to_lead(actor=request.user, suggestion=suggestion, **data.validated_data)
        return Response(LeadOutput(opportunity).data, status=status.HTTP_201_CREATED)


# --- win-back -------------------------------------------------------------------------------------

class WinBackOutput(serializers.ModelSerializer):
    customer = CustomerRef()
    offered_by = UserRef(allow_null=True)
    closed_by = UserRef(allow_null=True)

    class Meta:
        model = WinBack
        fields = ["id", "customer", "identified_at", "why", "trips_before", "last_trip_on", "reason", "reason_note",
                  "reason_recorded_at", "offer", "offer_value", "offered_at", "offered_by", "status", "closed_at",
                  "closed_by", "won_trip", "task"]


class ReasonInput(serializers.Serializer):
    reason = serializers.ChoiceField(choices=WinBack.Reason.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="")


class OfferInput(serializers.Serializer):
    offer = serializers.CharField(allow_blank=True)
    value = MoneyField(required=False, allow_null=True, default=None)


class LoseInput(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")


class SummaryOutput(serializers.Serializer):
    open = serializers.IntegerField()
    offered = serializers.IntegerField()
    won_back = serializers.IntegerField()
    lost = serializers.IntegerField()
    won_back_share = serializers.FloatField(allow_null=True, help_text="Won back ÷ closed cases.")
    offer_value = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    by_reason = serializers.ListField(child=serializers.DictField())


class WinBackViewSet(mixins.RetrieveModelMixin, AgencyViewSet):
    """Win-back cases (R-CARE-4): lapsed or declining customers, the reason they left, the offer made;
    won back automatically by their next confirmed trip."""

    serializer_class = WinBackOutput
    required_caps = {action: WORK for action in ("list", "retrieve", "reason", "offer", "lose", "summary")}

    def agency_queryset(self):
        return selectors.win_back_list(user=self.request.user)

    def _filtered(self, request):
        params = request.query_params
        return selectors.win_back_list(user=request.user, status=params.get("status", ""), why=params.get("why", ""),
                                       reason=params.get("reason", ""), owner=params.get("owner", ""))

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=["active", *WinBack.Status.values]),
                               OpenApiParameter("why", str, enum=WinBack.Why.values),
                               OpenApiParameter("reason", str, enum=["none", *WinBack.Reason.values]),
                               OpenApiParameter("owner", str, description="me, none or a staff id")],
                   responses=WinBackOutput(many=True))
    def list(self, request):
        return self.get_paginated_response(WinBackOutput(self.paginate_queryset(self._filtered(request)), many=True).data)

    def _answer(self, case):
        return Response(WinBackOutput(self.agency_queryset().get(pk=case.pk)).data)

    @extend_schema(request=ReasonInput, responses=WinBackOutput)
    @action(detail=True, methods=["post"])
    def reason(self, request, pk=None):
        """Record why the customer left."""
        case = self.get_object()
        data = ReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        return self._answer(services.win_back_record_reason(actor=request.user, case=case, **data.validated_data))

    @extend_schema(request=OfferInput, responses=WinBackOutput)
    @action(detail=True, methods=["post"])
    def offer(self, request, pk=None):
        """Record the offer made to the customer."""
        case = self.get_object()
        data = OfferInput(data=request.data)
        data.is_valid(raise_exception=True)
        return self._answer(services.win_back_offer(actor=request.user, case=case, **data.validated_data))

    @extend_schema(request=LoseInput, responses=WinBackOutput)
    @action(detail=True, methods=["post"])
    def lose(self, request, pk=None):
        """Close the case as lost (the reason must be recorded)."""
        case = self.get_object()
        data = LoseInput(data=request.data)
        data.is_valid(raise_exception=True)
        return self._answer(services.win_back_lose(actor=request.user, case=case, **data.validated_data))

    @extend_schema(responses=SummaryOutput)
    @action(detail=False, methods=["get"])
    def summary(self, request):
        """Cases by status and reason, and the share won back of the cases closed."""
        return Response(SummaryOutput(selectors.win_back_summary()).data)


# --- referrals ------------------------------------------------------------------------------------

class ReferralOutput(serializers.ModelSerializer):
    referrer = CustomerRef()
    referred = CustomerRef()
    recorded_by = UserRef(allow_null=True)
    rewarded_by = UserRef(allow_null=True)

    class Meta:
        model = Referral
        fields = ["id", "referrer", "referred", "note", "recorded_at", "recorded_by", "status", "qualified_at",
                  "qualifying_trip", "reward_description", "reward_value", "rewarded_at", "rewarded_by"]


class ReferralInput(serializers.Serializer):
    referrer = serializers.PrimaryKeyRelatedField(queryset=LIVE_CUSTOMERS)
    referred = serializers.PrimaryKeyRelatedField(queryset=LIVE_CUSTOMERS)
    note = serializers.CharField(required=False, allow_blank=True, default="")


class RewardInput(serializers.Serializer):
    description = serializers.CharField(allow_blank=True)
    value = MoneyField(required=False, allow_null=True, default=None)


class TopReferrerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    referred = serializers.IntegerField()
    travelled = serializers.IntegerField()
    rewarded = serializers.IntegerField()
    reward_value = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)


class ReferralViewSet(mixins.RetrieveModelMixin, ServiceCreateMixin, AgencyViewSet):
    """Referrals (R-CARE-5): pending until the referred customer's first confirmed trip, then qualified
    (the referrer's reward is due), then rewarded."""

    serializer_class = ReferralOutput
    input_serializer = ReferralInput
    reread = True
    required_caps = {action: WORK for action in ("list", "retrieve", "create", "reward", "top")}

    def agency_queryset(self):
        return selectors.referral_list()

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=Referral.Status.values),
                               OpenApiParameter("referrer", int)], responses=ReferralOutput(many=True))
    def list(self, request):
        queryset = selectors.referral_list(status=request.query_params.get("status", ""))
        referrer = _id_param(request, "referrer")
        if referrer is False:
            queryset = queryset.none()
        elif referrer is not None:
            queryset = queryset.filter(referrer_id=referrer)
        return self.get_paginated_response(ReferralOutput(self.paginate_queryset(queryset), many=True).data)

    def create_service(self, data):
        return services.referral_record(actor=self.request.user, **data)

    @extend_schema(request=RewardInput, responses=ReferralOutput)
    @action(detail=True, methods=["post"])
    def reward(self, request, pk=None):
        """Record the reward given to the referrer."""
        referral = self.get_object()
        data = RewardInput(data=request.data)
        data.is_valid(raise_exception=True)
        referral = services.referral_reward(actor=request.user, referral=referral, **data.validated_data)
        return Response(ReferralOutput(self.agency_queryset().get(pk=referral.pk)).data)

    @extend_schema(responses=TopReferrerOutput(many=True))
    @action(detail=False, methods=["get"])
    def top(self, request):
        """The customers who referred the most customers."""
        return Response(TopReferrerOutput(selectors.top_referrers(), many=True).data)
