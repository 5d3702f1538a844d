"""Travel-policy API (R-POL-1 … R-POL-3): the policy check, policies and their versions, booking
checks, approvals and the compliance report.

Thin: input serializers read the request, ``crm.policies.services`` / ``selectors`` do the work.
Reasons are rendered in the request's language (Accept-Language) from the engine's codes.
"""
from django.core.exceptions import PermissionDenied
from django.utils import translation
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.roles import Cap
from caravan.api.errors import conflict_response
from caravan.api.periods import period_input
from caravan.api.views import AgencyAPIView, AgencyViewSet
from crm.customers.api import CustomerRef, UserRef
from crm.customers.models import Customer
from crm.trips.models import ItineraryItem

from . import selectors, services
from .models import Approval, BookingCheck, PolicyVersion, TravelPolicy


PeriodInput = period_input(selectors.default_period)


def can_see_report(user) -> bool:
    return user.can(Cap.POLICIES_MANAGE) or user.can(Cap.REPORTS_VIEW)


class AcceptLanguage:
    """Reasons and labels in the language the client asks for (``Accept-Language``), else the
    staff member's or the agency's (AgencyContextMiddleware)."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.META.get("HTTP_ACCEPT_LANGUAGE"):
            translation.activate(translation.get_language_from_request(request))
            request.LANGUAGE_CODE = translation.get_language()


# --- the policy check -----------------------------------------------------------------------------

class PolicyCheckInput(serializers.Serializer):
    account = serializers.IntegerField(help_text="The corporate account (a customer of kind company).")
    traveler = serializers.IntegerField(required=False, allow_null=True,
                                        help_text="A person of the account: grade and department from their employment.")
    grade = serializers.CharField(required=False, allow_blank=True, default="", help_text="Without a traveler, e.g. M3.")
    department = serializers.CharField(required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(choices=BookingCheck.Kind.choices)
    offer = serializers.DictField(help_text="flight: carrier, flight_numbers, origin, destination, departure, "
                                            "duration_minutes or arrival, stops, cabin, fare, currency, distance_km; "
                                            "hotel: chain, property_name, city, country, nights, nightly_rate, "
                                            "currency, check_in")
    alternatives = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    requested_departure = serializers.CharField(required=False, allow_blank=True, allow_null=True, default=None)
    booked_at = serializers.CharField(required=False, allow_blank=True, allow_null=True, default=None,
                                      help_text="ISO 8601; default now. The version in force then judges.")


def offer_output(offer, price=None) -> dict | None:
    if offer is None:
        return None
    data = services._offer_json(offer)
    data["label"] = offer.label
    if price is not None:
        data["price_in_policy_currency"] = str(price)
    return data


def outcome_output(outcome: services.CheckOutcome) -> dict:
    verdict, version = outcome.verdict, outcome.version
    return {
        "compliant": verdict.compliant, "needs_approval": verdict.needs_approval, "forbidden": verdict.forbidden,
        "approvers": verdict.approvers,
        "policy": {"id": version.policy_id, "version": version.number, "version_id": version.pk,
                   "effective_from": version.effective_from.isoformat(), "currency": version.currency},
        "traveler": {"id": outcome.traveler.pk if outcome.traveler else None, "grade": outcome.grade,
                     "department": outcome.department},
        "booked_at": outcome.booked_at.isoformat(),
        "results": selectors.explained(outcome.results),
        "price": str(outcome.price) if outcome.price is not None else None,
        "cheapest_compliant": offer_output(verdict.cheapest_compliant, outcome.cheapest_price),
        "missed_saving": str(verdict.missed_saving), "currency": verdict.currency,
    }


def _customer(pk, *, kind: str, field: str, message: str) -> Customer | None:
    if pk is None:
        return None
    found = Customer.objects.filter(pk=pk, kind=kind, merged_into__isnull=True).first()
    if found is None:
        raise serializers.ValidationError({field: [message]})
    return found


class PolicyCheckView(AcceptLanguage, AgencyAPIView):
    """``POST /api/v1/policy-check``: judge a flight or hotel offer against the account's policy.
    Writes nothing; 400 with field errors (``offer.fare``, ``alternatives.1.cabin``…) on bad input."""

    required_caps = {"post": Cap.PIPELINE_WORK}

    @extend_schema(request=PolicyCheckInput, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        data = PolicyCheckInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        account = _customer(values.pop("account"), kind=Customer.Kind.COMPANY, field="account",
                            message=_("No such corporate account."))
        traveler = _customer(values.pop("traveler", None), kind=Customer.Kind.PERSON, field="traveler",
                             message=_("No such person."))
        outcome = services.policy_check(account=account, traveler=traveler, **values)
        return Response(outcome_output(outcome))


# --- policies and versions ------------------------------------------------------------------------

class VersionOutput(serializers.ModelSerializer):
    travel_manager = CustomerRef(allow_null=True)
    created_by = UserRef(allow_null=True)

    class Meta:
        model = PolicyVersion
        fields = ["id", "number", "effective_from", "rules", "currency", "travel_manager", "note", "created_by",
                  "created_at"]


class PolicyOutput(serializers.ModelSerializer):
    account = CustomerRef()
    in_force = serializers.SerializerMethodField()
    latest_number = serializers.SerializerMethodField()

    class Meta:
        model = TravelPolicy
        fields = ["id", "account", "in_force", "latest_number", "created_at"]

    def get_in_force(self, policy) -> dict | None:
        from django.utils import timezone

        version = selectors.policy_in_force(policy.account, timezone.now())
        return VersionOutput(version).data if version else None

    def get_latest_number(self, policy) -> int | None:
        return policy.versions.order_by("-number").values_list("number", flat=True).first()


class VersionInput(serializers.Serializer):
    account = serializers.IntegerField()
    rules = serializers.JSONField(help_text="The rules document (see docs/policies.md).")
    currency = serializers.CharField(required=False, allow_blank=True, default="")
    travel_manager = serializers.IntegerField(required=False, allow_null=True, default=None)
    effective_from = serializers.DateTimeField(required=False, allow_null=True, default=None)
    note = serializers.CharField(required=False, allow_blank=True, default="")


class TravelPolicyViewSet(mixins.RetrieveModelMixin, AcceptLanguage, AgencyViewSet):
    """Corporate travel policies. ``POST`` saves a new version (versions are never edited)."""

    serializer_class = PolicyOutput
    required_caps = {"list": Cap.CUSTOMERS_VIEW, "retrieve": Cap.CUSTOMERS_VIEW, "versions": Cap.CUSTOMERS_VIEW,
                     "create": Cap.POLICIES_MANAGE, "report": "authenticated"}

    def agency_queryset(self):
        return TravelPolicy.objects.select_related("account").order_by("account__name", "id")

    @extend_schema(parameters=[OpenApiParameter("account", OpenApiTypes.INT)], responses=PolicyOutput(many=True))
    def list(self, request):
        queryset = self.agency_queryset()
        if (account := request.query_params.get("account", "")).isdigit():
            queryset = queryset.filter(account_id=account)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(PolicyOutput(page, many=True).data)

    @extend_schema(responses=VersionOutput(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        policy = self.get_object()
        return Response(VersionOutput(policy.versions.select_related("travel_manager", "created_by")
                                      .order_by("-number"), many=True).data)

    @extend_schema(request=VersionInput, responses={201: VersionOutput})
    def create(self, request):
        data = VersionInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        account = _customer(values.pop("account"), kind=Customer.Kind.COMPANY, field="account",
                            message=_("No such corporate account."))
        manager = _customer(values.pop("travel_manager"), kind=Customer.Kind.PERSON, field="travel_manager",
                            message=_("No such person."))
        version = services.policy_save(actor=request.user, account=account, travel_manager=manager, **values)
        return Response(VersionOutput(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("from", OpenApiTypes.DATE), OpenApiParameter("to", OpenApiTypes.DATE)],
                   responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def report(self, request, pk=None):
        """The compliance and savings report of the policy's account over a period."""
        if not can_see_report(request.user):
            raise PermissionDenied
        policy = self.get_object()
        period = PeriodInput(data=request.query_params)
        period.is_valid(raise_exception=True)
        return Response(report_output(selectors.compliance_report(account=policy.account, **period.validated_data)))


def report_output(report: selectors.ComplianceReport) -> dict:
    return {
        "account": {"id": report.account.pk, "name": report.account.name},
        "date_from": report.date_from.isoformat(), "date_to": report.date_to.isoformat(),
        "currency": report.currency, "checked": report.checked, "compliant": report.compliant,
        "compliance_rate": report.compliance_rate, "missed_savings": str(report.missed_savings),
        "exception_reasons": [{"code": code, "label": str(label), "count": n} for code, label, n in report.reasons],
        "approvals": report.approvals,
        "proposal": {"paid": str(report.paid), "within_policy": str(report.within_policy),
                     "saving": str(report.proposed_saving),
                     "trips": [{**t, "paid": str(t["paid"]), "within_policy": str(t["within_policy"]),
                                "saving": str(t["saving"])} for t in report.trips]},
    }


# --- booking checks -------------------------------------------------------------------------------

class BookingCheckOutput(serializers.ModelSerializer):
    account = CustomerRef()
    traveler = CustomerRef()
    version = serializers.IntegerField(source="version.number")
    results = serializers.SerializerMethodField()
    approval = serializers.SerializerMethodField()

    class Meta:
        model = BookingCheck
        fields = ["id", "trip", "item", "account", "traveler", "grade", "department", "version", "kind", "compliant",
                  "forbidden", "failed_codes", "price", "cheapest_price", "missed_saving", "currency", "offer",
                  "results", "booked_at", "checked_at", "is_current", "approval"]

    def get_results(self, check) -> list:
        return selectors.explained(check.results)

    def get_approval(self, check) -> dict | None:
        approval = getattr(check, "approval", None)  # None: no approval was needed
        return {"id": approval.pk, "status": approval.status} if approval else None


class BookingCheckInput(serializers.Serializer):
    item = serializers.IntegerField(help_text="A flight or hotel item of a trip.")
    traveler = serializers.IntegerField(help_text="One of the trip's travelers.")
    offer = serializers.DictField()
    alternatives = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    requested_departure = serializers.CharField(required=False, allow_blank=True, allow_null=True, default=None)
    booked_at = serializers.CharField(required=False, allow_blank=True, allow_null=True, default=None)


class BookingCheckViewSet(mixins.RetrieveModelMixin, AcceptLanguage, AgencyViewSet):
    """Trip items judged against their account's policy (what the compliance report counts)."""

    serializer_class = BookingCheckOutput
    required_caps = {"list": Cap.PIPELINE_WORK, "retrieve": Cap.PIPELINE_WORK, "create": Cap.PIPELINE_WORK}

    def agency_queryset(self):
        return selectors.booking_checks()

    @extend_schema(parameters=[OpenApiParameter("account", OpenApiTypes.INT), OpenApiParameter("trip", OpenApiTypes.INT)],
                   responses=BookingCheckOutput(many=True))
    def list(self, request):
        queryset = self.agency_queryset()
        for name in ("account", "trip"):
            if (value := request.query_params.get(name, "")).isdigit():
                queryset = queryset.filter(**{f"{name}_id": value})
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(BookingCheckOutput(page, many=True).data)

    @extend_schema(request=BookingCheckInput, responses={201: BookingCheckOutput})
    def create(self, request):
        """Check a trip item and record it; out of policy asks for an approval (or records it as
        blocked when the policy forbids it: 201 with ``forbidden: true``)."""
        data = BookingCheckInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        item = ItineraryItem.objects.select_related("trip", "trip__customer").filter(pk=values.pop("item")).first()
        if item is None:
            raise serializers.ValidationError({"item": [_("No such itinerary item.")]})
        traveler = _customer(values.pop("traveler"), kind=Customer.Kind.PERSON, field="traveler",
                             message=_("No such person."))
        check = services.booking_check_record(actor=request.user, item=item, traveler=traveler, **values)
        return Response(BookingCheckOutput(check).data, status=status.HTTP_201_CREATED)


# --- approvals ------------------------------------------------------------------------------------

class ApprovalOutput(serializers.ModelSerializer):
    account = CustomerRef()
    traveler = CustomerRef()
    approver = CustomerRef(allow_null=True)
    requested_by = UserRef(allow_null=True)
    decided_by = UserRef(allow_null=True)
    decided_by_person = CustomerRef(allow_null=True)
    booking_check = serializers.IntegerField(source="booking_check_id")
    reasons = serializers.SerializerMethodField()

    class Meta:
        model = Approval
        fields = ["id", "booking_check", "trip", "account", "traveler", "status", "approver_kind", "approver",
                  "approver_email", "requested_by", "requested_at", "email_sent_at", "decided_by",
                  "decided_by_person", "decided_via", "decided_at", "comment", "reasons"]

    def get_reasons(self, approval) -> list[str]:
        return selectors.failed_reasons(approval.booking_check)


class DecideInput(serializers.Serializer):
    decision = serializers.ChoiceField(choices=[Approval.Status.APPROVED, Approval.Status.REJECTED])
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class ApprovalViewSet(mixins.RetrieveModelMixin, AcceptLanguage, AgencyViewSet):
    """Approvals of out-of-policy bookings: policy managers see all and decide (never their own
    requests); others see the ones they asked for or whose trip they own."""

    serializer_class = ApprovalOutput
    required_caps = {"list": "authenticated", "retrieve": "authenticated", "decide": Cap.POLICIES_MANAGE}

    def agency_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema has no user
            return Approval.objects.none()
        return selectors.approvals_for(user=self.request.user)

    @extend_schema(parameters=[OpenApiParameter("status", OpenApiTypes.STR)], responses=ApprovalOutput(many=True))
    def list(self, request):
        queryset = selectors.approvals_for(user=request.user, status=request.query_params.get("status", ""))
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(ApprovalOutput(page, many=True).data)

    @extend_schema(request=DecideInput, responses={200: ApprovalOutput, 409: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        """Approve or reject (a rejection needs a comment). 403 for the requester; 409 if decided already."""
        approval = self.get_object()
        data = DecideInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            approval = services.approval_decide(approval=approval, actor=request.user, **data.validated_data)
        except services.AlreadyDecided as exc:
            return conflict_response(exc.messages[0], {"id": approval.pk, "status": Approval.objects.get(
                pk=approval.pk).status})
        return Response(ApprovalOutput(approval).data)

