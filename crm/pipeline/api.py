"""Pipeline API (R-SALE-1, 2, 6; R-INT-4): opportunities and their moves, assignment, tasks, stages,
the conversion report, and the signed website webhook.

Thin: input serializers read the request; ``crm.pipeline.services`` / ``selectors`` do the work.
"""
import json
import re
from datetime import timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator
from django.db import transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.roles import Cap
from caravan.api.errors import Conflict
from caravan.api.fields import MoneyField
from caravan.api.views import AgencyAPIView, AgencyViewSet
from caravan.api.writes import ServiceCreateMixin, ServiceUpdateMixin
from caravan.tenancy import current_agency
from crm.customers.api import CustomerRef, UserRef
from crm.customers.models import Customer

from . import intake, selectors, services
from .models import Opportunity, Stage, Task

WORK, MANAGE = Cap.PIPELINE_WORK, Cap.PIPELINE_MANAGE


# --- opportunities ----------------------------------------------------------------------------------

class StageOutput(serializers.ModelSerializer):
    name = serializers.CharField(source="__str__")

    class Meta:
        model = Stage
        fields = ["id", "name", "code", "kind", "position", "probability", "is_active"]


class OpportunityOutput(serializers.ModelSerializer):
    customer = CustomerRef()
    owner = UserRef(allow_null=True)
    stage = StageOutput()
    value = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)
    budget = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True, allow_null=True)

    class Meta:
        model = Opportunity
        fields = ["id", "customer", "title", "destination", "depart_on", "return_on", "adults", "children", "budget",
                  "value", "currency", "message", "source", "is_key", "stage", "owner", "assigned_at", "lost_reason",
                  "lost_note", "created_at", "stage_changed_at", "closed_at"]


class OpportunityCreateInput(serializers.Serializer):
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all(),  # merged away: 409 (services)
                                                  required=False, allow_null=True)
    name = serializers.CharField(required=False, allow_blank=True, default="")
    phone = serializers.CharField(required=False, allow_blank=True, default="")
    email = serializers.CharField(required=False, allow_blank=True, default="")
    source = serializers.ChoiceField(choices=[Opportunity.Source.CALL_CENTER, Opportunity.Source.STAFF],
                                     default=Opportunity.Source.STAFF)
    title = serializers.CharField(required=False, allow_blank=True, default="")
    destination = serializers.CharField(required=False, allow_blank=True, default="", max_length=120)
    depart_on = serializers.DateField(required=False, allow_null=True, default=None)
    return_on = serializers.DateField(required=False, allow_null=True, default=None)
    adults = serializers.IntegerField(required=False, default=1)
    children = serializers.IntegerField(required=False, default=0)
    budget = MoneyField(required=False, allow_null=True, default=None)
    message = serializers.CharField(required=False, allow_blank=True, default="")
    owner = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), required=False,
                                               allow_null=True, default=None)

    def validate(self, data):
        if data.get("customer") is None and not (data.get("phone") or data.get("email")):
            raise serializers.ValidationError({"phone": [_("Give a customer, or a phone number or e-mail address.")]})
        return data


class OpportunityUpdateInput(serializers.Serializer):
    title = serializers.CharField(required=False)
    destination = serializers.CharField(required=False, allow_blank=True, max_length=120)
    depart_on = serializers.DateField(required=False, allow_null=True)
    return_on = serializers.DateField(required=False, allow_null=True)
    adults = serializers.IntegerField(required=False)
    children = serializers.IntegerField(required=False, min_value=0)
    budget = MoneyField(required=False, allow_null=True)
    value = MoneyField(required=False)
    message = serializers.CharField(required=False, allow_blank=True)
    is_key = serializers.BooleanField(required=False)


class MoveInput(serializers.Serializer):
    stage = serializers.PrimaryKeyRelatedField(queryset=Stage.objects.all())
    lost_reason = serializers.ChoiceField(choices=Opportunity.LostReason.choices, required=False, allow_blank=True,
                                          default="")
    lost_note = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)


class AssignInput(serializers.Serializer):
    owner = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True))


class OpportunityFilterInput(serializers.Serializer):
    owner = serializers.CharField(required=False, help_text="A user id, 'me' (default) or 'all' (managers).")
    stage = serializers.PrimaryKeyRelatedField(queryset=Stage.objects.all(), required=False)
    source = serializers.ChoiceField(choices=Opportunity.Source.choices, required=False)
    is_key = serializers.BooleanField(required=False, allow_null=True, default=None)
    unassigned = serializers.BooleanField(required=False, default=False)
    created_from = serializers.DateField(required=False)
    created_to = serializers.DateField(required=False)
    q = serializers.CharField(required=False, allow_blank=True, default="")


def _owner_filter(request, value: str | None) -> dict:
    """'me' for everyone; another person or 'all' only for managers."""
    if value in (None, "", "me"):
        return {"owner": request.user}
    if not request.user.can(MANAGE):
        raise serializers.ValidationError({"owner": [_("Only managers see other people's pipeline.")]})
    if value == "all":
        return {"everyone": True}
    try:
        return {"owner": User.objects.get(pk=int(value))}
    except (ValueError, User.DoesNotExist):
        raise serializers.ValidationError({"owner": [_("No such colleague.")]}) from None


class OpportunityViewSet(mixins.RetrieveModelMixin, ServiceCreateMixin, AgencyViewSet):
    """Opportunities (a lead is an opportunity nobody owns yet)."""

    serializer_class = OpportunityOutput
    input_serializer = OpportunityCreateInput
    update_serializer = OpportunityUpdateInput
    reread = True
    required_caps = {"list": WORK, "create": WORK, "retrieve": WORK, "partial_update": WORK, "move": WORK,
                     "take": WORK, "assign": MANAGE}

    def agency_queryset(self):
        return Opportunity.objects.select_related("customer", "owner", "stage")

    def _can_touch(self, opportunity):
        """Salespeople change their own and unowned opportunities; managers any."""
        user = self.request.user
        if not (user.can(MANAGE) or opportunity.owner_id in (None, user.pk)):
            raise Http404  # as if it did not exist: no probing of colleagues' deals by id

    @extend_schema(parameters=[OpportunityFilterInput], responses=OpportunityOutput(many=True))
    def list(self, request):
        filters = OpportunityFilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = dict(filters.validated_data)
        unassigned, owner = data.pop("unassigned"), data.pop("owner", None)
        who = {"unassigned": True} if unassigned else _owner_filter(request, owner)
        qs = selectors.opportunities(key=data.pop("is_key"), **who, **data).order_by("-created_at", "-pk")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(OpportunityOutput(page, many=True).data)

    def create_service(self, data):
        user = self.request.user
        if data["owner"] is not None and data["owner"] != user and not user.can(MANAGE):
            raise serializers.ValidationError({"owner": [_("Only managers give leads to others.")]})
        return services.lead_intake(actor=user, **data)

    def partial_update(self, request, pk=None):
        opportunity = self.get_object()
        self._can_touch(opportunity)
        services.opportunity_update(actor=request.user, opportunity=opportunity, **self.validated(partial=True))
        return self.answer(opportunity)

    @extend_schema(request=MoveInput, responses=OpportunityOutput)
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        """Move to another stage if the workflow allows it (``stage`` error otherwise). Lost needs ``lost_reason``.
        Won confirms the quote as the trip (or makes the trip)."""
        opportunity = self.get_object()
        self._can_touch(opportunity)
        data = MoveInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.opportunity_move(actor=request.user, opportunity=opportunity, to=data.validated_data["stage"],
                                  lost_reason=data.validated_data["lost_reason"], lost_note=data.validated_data["lost_note"])
        return Response(OpportunityOutput(self.agency_queryset().get(pk=opportunity.pk)).data)

    @extend_schema(request=None, responses={200: OpportunityOutput, 409: OpenApiResponse(description="Already taken.")})
    @action(detail=True, methods=["post"])
    def take(self, request, pk=None):
        """Take an unowned lead. Of two people taking it at once, one gets it; the other gets 409."""
        opportunity = self.get_object()
        try:
            services.opportunity_take(actor=request.user, opportunity=opportunity)
        except services.AlreadyTaken as exc:
            raise Conflict(exc.messages[0]) from exc
        return Response(OpportunityOutput(self.agency_queryset().get(pk=opportunity.pk)).data)

    @extend_schema(request=AssignInput, responses=OpportunityOutput)
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        opportunity = self.get_object()
        data = AssignInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.opportunity_assign(actor=request.user, opportunity=opportunity, owner=data.validated_data["owner"])
        return Response(OpportunityOutput(self.agency_queryset().get(pk=opportunity.pk)).data)


class StageViewSet(AgencyViewSet):
    """The agency's stages in board order."""

    serializer_class = StageOutput
    pagination_class = None
    required_caps = {"list": WORK}

    def agency_queryset(self):
        return Stage.objects.all()

    def list(self, request):
        return Response(StageOutput(self.get_queryset(), many=True).data)


# --- tasks ------------------------------------------------------------------------------------------

class TaskOutput(serializers.ModelSerializer):
    owner = UserRef(allow_null=True)
    customer = CustomerRef(allow_null=True)
    is_overdue = serializers.BooleanField(read_only=True)
    title = serializers.CharField(source="display_title", read_only=True,
                                  help_text="In the request's language when the system wrote it (see text_kind).")
    text_kind = serializers.CharField(read_only=True,
                                      help_text="The kind of a title the system wrote (blank: typed by a person).")
    notes = serializers.CharField(source="display_notes", read_only=True,
                                  help_text="In the request's language when the system wrote them (see note_kind).")
    note_kind = serializers.CharField(read_only=True,
                                      help_text="The kind of notes the system wrote (blank: typed by a person).")

    class Meta:
        model = Task
        fields = ["id", "title", "text_kind", "kind", "notes", "note_kind", "owner", "customer", "opportunity", "trip", "due_at", "remind_at",
                  "reminded_at", "done_at", "is_overdue", "created_at"]


class TaskInput(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=Task.Kind.choices, default=Task.Kind.FOLLOW_UP)
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    due_at = serializers.DateTimeField()
    remind_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    owner = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), required=False,
                                               allow_null=True, default=None)
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all(), required=False, allow_null=True,
                                                  default=None)
    opportunity = serializers.PrimaryKeyRelatedField(queryset=Opportunity.objects.all(), required=False,
                                                     allow_null=True, default=None)


class TaskUpdateInput(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    notes = serializers.CharField(required=False, allow_blank=True)
    due_at = serializers.DateTimeField(required=False)
    remind_at = serializers.DateTimeField(required=False, allow_null=True)
    owner = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), required=False)


class TaskDoneInput(serializers.Serializer):
    done = serializers.BooleanField(default=True)


class TaskFilterInput(serializers.Serializer):
    everyone = serializers.BooleanField(required=False, default=False, help_text="Managers: everyone's tasks.")
    done = serializers.BooleanField(required=False, default=False)
    overdue = serializers.BooleanField(required=False, default=False)


class TaskViewSet(mixins.RetrieveModelMixin, ServiceCreateMixin, ServiceUpdateMixin, AgencyViewSet):
    """Follow-up tasks: your own (managers: anyone's)."""

    serializer_class = TaskOutput
    input_serializer = TaskInput
    update_serializer = TaskUpdateInput
    required_caps = {"list": WORK, "create": WORK, "retrieve": WORK, "partial_update": WORK, "done": WORK}

    def agency_queryset(self):
        qs = Task.objects.select_related("owner", "customer")
        return qs if self.request.user.can(MANAGE) else qs.filter(owner=self.request.user)

    @extend_schema(parameters=[TaskFilterInput], responses=TaskOutput(many=True))
    def list(self, request):
        filters = TaskFilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        qs = selectors.tasks_for(user=request.user, everyone=data["everyone"] and request.user.can(MANAGE),
                                 done=data["done"])
        if data["overdue"]:
            qs = qs.filter(due_at__lt=timezone.now())
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(TaskOutput(page, many=True).data)

    def create_service(self, data):
        values = dict(data)
        values["owner"] = values["owner"] or self.request.user
        if values["opportunity"] is not None and values["customer"] is None:
            values["customer"] = values["opportunity"].customer
        return services.task_create(actor=self.request.user, **values)

    def update_service(self, task, data):
        return services.task_update(actor=self.request.user, task=task, **data)

    @extend_schema(request=TaskDoneInput, responses=TaskOutput)
    @action(detail=True, methods=["post"])
    def done(self, request, pk=None):
        task = self.get_object()
        data = TaskDoneInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(TaskOutput(services.task_done(actor=request.user, task=task, done=data.validated_data["done"])).data)


# --- the managers' report ---------------------------------------------------------------------------

class ReportInput(serializers.Serializer):
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)
    owner = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), required=False)

    def to_internal_value(self, data):
        # ``from`` is a Python keyword: ?from=&to= are the public names.
        data = {"start": data.get("from"), "end": data.get("to"), "owner": data.get("owner")}
        return super().to_internal_value({k: v for k, v in data.items() if v not in (None, "")})


class PipelineReportView(AgencyAPIView):
    """Conversion over a period (default: the last 90 days) and each salesperson's open pipeline."""

    required_caps = {"get": MANAGE}

    @extend_schema(parameters=[ReportInput], responses=OpenApiResponse(description="Conversion and per-person figures."))
    def get(self, request):
        data = ReportInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        end = data.validated_data.get("end") or timezone.localdate()
        start = data.validated_data.get("start") or end - timedelta(days=90)
        report = selectors.conversion(start=start, end=end, owner=data.validated_data.get("owner"))
        return Response({
            "from": start, "to": end, "total": report["total"], "won": report["won"], "lost": report["lost"],
            "win_rate": report["win_rate"], "won_value": str(report["won_value"]),
            "stages": [{"id": r["stage"].pk, "name": str(r["stage"]), "kind": r["stage"].kind, "reached": r["reached"],
                        "rate": round(r["rate"], 1)} for r in report["stages"]],
            "lost_reasons": [{"reason": r["reason"], "count": r["count"]} for r in report["lost_reasons"]],
            "salespeople": [{"id": r["user"].pk, "full_name": r["user"].full_name, "open": r["open"], "key": r["key"],
                             "value": str(r["value"]), "overdue_tasks": r["overdue"]} for r in selectors.by_salesperson()],
        })


# --- the website webhook ----------------------------------------------------------------------------

class RawJSONParser(BaseParser):
    """Keeps the body as bytes: the signature is over the exact bytes sent."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read()


class WebhookData(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    phone = serializers.CharField(required=False, allow_blank=True, default="", max_length=40)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    language = serializers.ChoiceField(choices=["zh-hans", "en"], required=False, default="")
    member_id = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    destination = serializers.CharField(required=False, allow_blank=True, default="", max_length=120)
    depart_on = serializers.DateField(required=False, allow_null=True, default=None)
    return_on = serializers.DateField(required=False, allow_null=True, default=None)
    adults = serializers.IntegerField(required=False, min_value=1, max_value=99, default=1)
    children = serializers.IntegerField(required=False, min_value=0, max_value=99, default=0)
    budget = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False, allow_null=True,
                                      default=None)
    message = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)

    def validate(self, data):
        if not (data["phone"] or data["email"]):
            raise serializers.ValidationError({"phone": [_("Give a phone number or an e-mail address.")]})
        return data


class WebhookEvent(serializers.Serializer):
    id = serializers.CharField(max_length=100)
    type = serializers.ChoiceField(choices=["member.signed_up", "enquiry.created"])
    created = serializers.IntegerField(required=False)
    data = WebhookData()


# WebhookData's text fields and their max_length (the e-mail has none: EmailValidator decides).
_TEXT_LIMITS = {"name": 200, "phone": 40, "email": None, "member_id": 100, "destination": 120, "message": 4000}
_UNSAFE = re.compile("[\x00\ud800-\udfff]")  # what CharField's validators refuse: NUL and lone surrogates
_email_valid = EmailValidator()  # EmailField's check (its message aside)


def _plain_text(value, limit: int | None, *, blank: bool) -> str | None:
    """A CharField's value for a plain string within bounds, or None (the serializer decides)."""
    if type(value) is not str or _UNSAFE.search(value):
        return None
    value = value.strip()
    if (not value and not blank) or (limit is not None and len(value) > limit):
        return None
    return value


def _plain_count(value, low: int, high: int) -> int | None:
    return value if type(value) is int and low <= value <= high else None


def plain_event(payload) -> dict | None:
    """:class:`WebhookEvent`'s ``validated_data`` for an event that is plainly valid — only strings where
    it takes text, ints where it takes numbers, no dates or budget — built without the serializer, whose
    fields (deep-copied for each instance) cost the webhook more than the rest of its parsing; None for
    anything else, which the serializer then validates and words the errors for, as before. A test
    compares the two on valid and invalid events."""
    if type(payload) is not dict or type(data := payload.get("data")) is not dict:
        return None
    event_id = _plain_text(payload.get("id"), 100, blank=False)
    kind = payload.get("type")
    if event_id is None or kind not in ("member.signed_up", "enquiry.created") or type(kind) is not str:
        return None
    event = {"id": event_id, "type": kind}
    if "created" in payload:
        if type(payload["created"]) is not int:
            return None
        event["created"] = payload["created"]
    clean = {}
    for name in ("name", "phone", "email", "language", "member_id", "destination"):
        if name not in data:
            if name == "name":
                return None
            clean[name] = ""
        elif name == "language":
            if data[name] not in ("zh-hans", "en") or type(data[name]) is not str:
                return None
            clean[name] = data[name]
        else:
            clean[name] = _plain_text(data[name], _TEXT_LIMITS[name], blank=name != "name")
            if clean[name] is None:
                return None
    if clean["email"]:
        try:
            _email_valid(clean["email"])
        except DjangoValidationError:
            return None
    if not (clean["phone"] or clean["email"]):
        return None
    for name in ("depart_on", "return_on"):
        if data.get(name) is not None:
            return None
        clean[name] = None
    for name, low, default in (("adults", 1, 1), ("children", 0, 0)):
        clean[name] = _plain_count(data[name], low, 99) if name in data else default
        if clean[name] is None:
            return None
    if data.get("budget") is not None:
        return None
    clean["budget"] = None
    clean["message"] = _plain_text(data["message"], 4000, blank=True) if "message" in data else ""
    if clean["message"] is None:
        return None
    event["data"] = clean
    return event


class WebsiteWebhookView(APIView):
    """Website member sign-ups and enquiries, signed with the agency's secret (docs/integrations.md).

    Not an ``AgencyAPIView``: the sender is a website, not staff. Authentication is the HMAC
    signature; the agency is the host's, as everywhere, and the platform domain answers 404.
    401 for a missing, wrong or stale signature; 400 for a body that is not a valid event; 200 for
    an event id seen before (nothing written); 201 when applied."""

    authentication_classes = []
    permission_classes = [AllowAny]
    parser_classes = [RawJSONParser]
    throttle_classes = []

    @extend_schema(request=WebhookEvent, responses={201: OpenApiResponse(description="Applied."),
                                                    200: OpenApiResponse(description="Seen before; nothing written."),
                                                    400: OpenApiResponse(description="Not a valid event."),
                                                    401: OpenApiResponse(description="Bad or stale signature.")})
    def post(self, request):
        if current_agency() is None:
            raise Http404
        body = request.data if isinstance(request.data, bytes) else b""
        try:
            intake.signature_check(header=request.headers.get("X-Caravan-Signature", ""), body=body,
                                   secret=services.webhook_secret())
        except intake.BadSignature as exc:
            raise AuthenticationFailed(str(exc)) from exc
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise serializers.ValidationError({"body": [_("The body is not valid JSON.")]}) from None
        event = plain_event(payload)
        if event is None:
            checked = WebhookEvent(data=payload)
            checked.is_valid(raise_exception=True)
            event = checked.validated_data
        with transaction.atomic():
            saved, applied = intake.event_handle(event_id=event["id"], kind=event["type"], data=event["data"])
        return Response({"event": saved.event_id, "applied": applied, "customer": saved.customer_id,
                         "opportunity": saved.opportunity_id},
                        status=status.HTTP_201_CREATED if applied else status.HTTP_200_OK)

    def get_authenticate_header(self, request):
        return 'Signature realm="api", header="X-Caravan-Signature"'
