"""Campaigns API (R-CAMP-2, R-CAMP-3): e-mail templates, campaigns and their actions (test send,
schedule, start, cancel, bounce), results, and a customer's marketing consent.

Thin: input serializers read the request, ``crm.campaigns.services`` / ``selectors`` do the work;
a service's ``ValidationError`` comes back as field errors.
"""
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.roles import Cap
from caravan.api.fields import MoneyField
from caravan.api.views import AgencyViewSet
from caravan.api.writes import ServiceCreateMixin, ServiceUpdateMixin
from crm.customers.models import ChangeLog, Customer
from crm.segments.models import Segment

from . import selectors, services
from .models import Campaign, Consent, EmailTemplate

LIVE_CUSTOMERS = Customer.objects.filter(merged_into__isnull=True)


# --- templates ------------------------------------------------------------------------------------

class EmailTemplateOutput(serializers.ModelSerializer):
    class Meta:
        model = EmailTemplate
        fields = ["id", "name", "subject_zh", "body_zh", "subject_en", "body_en", "created_at", "updated_at"]


class EmailTemplateInput(serializers.Serializer):
    """Types only; the rules (personal fields, languages) are ``services.template_save``'s."""

    name = serializers.CharField(max_length=120, allow_blank=True)
    subject_zh = serializers.CharField(required=False, allow_blank=True, default="")
    body_zh = serializers.CharField(required=False, allow_blank=True, default="")
    subject_en = serializers.CharField(required=False, allow_blank=True, default="")
    body_en = serializers.CharField(required=False, allow_blank=True, default="")


class TemplatePreviewOutput(serializers.Serializer):
    language = serializers.CharField()
    subject = serializers.CharField()
    body = serializers.CharField()


class TemplateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceCreateMixin, ServiceUpdateMixin,
                      AgencyViewSet):
    """E-mail templates with personal fields ({{ name }}, {{ first_name }}, {{ owner_name }},
    {{ last_destination }}, {{ agency_name }}), in Chinese and/or English."""

    serializer_class = EmailTemplateOutput
    input_serializer = EmailTemplateInput
    required_caps = {action: Cap.CAMPAIGNS_MANAGE for action in
                     ("list", "create", "retrieve", "partial_update", "destroy", "preview")}

    def agency_queryset(self):
        return EmailTemplate.objects.order_by("name")

    def create_service(self, data):
        return services.template_save(actor=self.request.user, **data)

    def update_service(self, template, data):
        fields = {key: getattr(template, key) for key in ("name", *services.TEMPLATE_FIELDS)}
        return services.template_save(actor=self.request.user, template=template, **{**fields, **data})

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.template_delete(actor=request.user, template=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=TemplatePreviewOutput(many=True))
    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        """The subject and body per language as ``?customer=<id>`` (or a made-up customer) would get them."""
        raw = request.query_params.get("customer", "")
        customer = get_object_or_404(LIVE_CUSTOMERS, pk=raw) if raw.isdigit() else None
        return Response(TemplatePreviewOutput(services.template_preview(template=self.get_object(), customer=customer),
                                      many=True).data)


# --- campaigns ------------------------------------------------------------------------------------

class CampaignOutput(serializers.ModelSerializer):
    segment_name = serializers.CharField(source="segment.name", default=None, read_only=True, allow_null=True)
    template_name = serializers.CharField(source="template.name", read_only=True)

    class Meta:
        model = Campaign
        fields = ["id", "name", "status", "segment", "segment_name", "template", "template_name", "scheduled_at",
                  "control_share", "attribution_days", "cost", "from_name", "reply_to", "rate_per_second",
                  "definition", "created_at", "started_at", "finished_at", "cancelled_at"]


class CampaignInput(serializers.Serializer):
    """Types only; the rules are ``services.campaign_save``'s."""

    name = serializers.CharField(max_length=150, allow_blank=True)
    segment = serializers.PrimaryKeyRelatedField(queryset=Segment.objects.all(), allow_null=True)
    template = serializers.PrimaryKeyRelatedField(queryset=EmailTemplate.objects.all(), allow_null=True)
    control_share = serializers.IntegerField(required=False, default=0, help_text="0–50 (%)")
    attribution_days = serializers.IntegerField(required=False, default=30, help_text="1–365")
    cost = MoneyField(required=False, default=0)
    from_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    reply_to = serializers.CharField(max_length=254, required=False, allow_blank=True, default="")
    rate_per_second = serializers.IntegerField(required=False, default=300, help_text="1–2000 e-mails a second")


class CampaignTestSendInput(serializers.Serializer):
    to = serializers.CharField(required=False, allow_blank=True, help_text="Default: your own address.")
    customer = serializers.PrimaryKeyRelatedField(queryset=LIVE_CUSTOMERS, required=False, allow_null=True,
                                                  help_text="Render as this customer (default: the first of the audience).")


class CampaignScheduleInput(serializers.Serializer):
    scheduled_at = serializers.DateTimeField()


class CampaignTestSendOutput(serializers.Serializer):
    sent = serializers.IntegerField(help_text="E-mails sent: one per written language.")


class CampaignBounceOutput(serializers.Serializer):
    email = serializers.CharField()
    status = serializers.CharField()


class CampaignBounceInput(serializers.Serializer):
    email = serializers.CharField()
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class CampaignGroupOutput(serializers.Serializer):
    recipients = serializers.IntegerField()
    measured = serializers.IntegerField()
    responded = serializers.IntegerField()
    response_rate = serializers.FloatField(allow_null=True)
    converted = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True, help_text="Booking rate of the measured recipients, %")
    trips = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2)
    margin = serializers.DecimalField(max_digits=16, decimal_places=2)


class CampaignResultsOutput(serializers.Serializer):
    campaign = serializers.IntegerField(source="campaign.pk")
    status = serializers.CharField(source="campaign.status")
    attribution_days = serializers.IntegerField(source="campaign.attribution_days")
    recipients = serializers.IntegerField()
    pending = serializers.IntegerField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    bounced = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    unsubscribed = serializers.IntegerField()
    open_rate = serializers.FloatField(allow_null=True)
    click_rate = serializers.FloatField(allow_null=True)
    send = CampaignGroupOutput()
    control = CampaignGroupOutput()
    lift = serializers.FloatField(allow_null=True, help_text="Send-group booking rate minus control's, points")
    incremental_bookers = serializers.FloatField(allow_null=True)
    cost = serializers.DecimalField(max_digits=14, decimal_places=2)
    net_margin = serializers.DecimalField(max_digits=16, decimal_places=2)
    return_on_cost = serializers.FloatField(allow_null=True)


class CampaignViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceCreateMixin, ServiceUpdateMixin,
                      AgencyViewSet):
    """E-mail campaigns to a segment: drafts, test sends, scheduling, sending in the background, results."""

    serializer_class = CampaignOutput
    input_serializer = CampaignInput
    required_caps = {action: Cap.CAMPAIGNS_MANAGE for action in
                     ("list", "create", "retrieve", "partial_update", "test_send", "schedule", "start", "cancel",
                      "results", "bounce")}

    def agency_queryset(self):
        return Campaign.objects.select_related("segment", "template").order_by("-created_at", "-id")

    def create_service(self, data):
        return services.campaign_save(actor=self.request.user, **data)

    def update_service(self, campaign, data):
        fields = {key: getattr(campaign, key) for key in ("name", "segment", "template", "control_share",
                                                         "attribution_days", "cost", "from_name", "reply_to",
                                                         "rate_per_second")}
        return services.campaign_save(actor=self.request.user, campaign=campaign, **{**fields, **data})

    @extend_schema(request=CampaignTestSendInput, responses=CampaignTestSendOutput)
    @action(detail=True, methods=["post"], url_path="test-send")
    def test_send(self, request, pk=None):
        """Send the e-mail to yourself (or ``to``), one per language; not recorded as a recipient."""
        campaign = self.get_object()
        data = CampaignTestSendInput(data=request.data)
        data.is_valid(raise_exception=True)
        sent = services.campaign_test_send(actor=request.user, campaign=campaign,
                                           to=data.validated_data.get("to") or request.user.email,
                                           customer=data.validated_data.get("customer"))
        return Response({"sent": sent})

    @extend_schema(request=CampaignScheduleInput, responses=CampaignOutput)
    @action(detail=True, methods=["post"])
    def schedule(self, request, pk=None):
        data = CampaignScheduleInput(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = services.campaign_schedule(actor=request.user, campaign=self.get_object(),
                                              at=data.validated_data["scheduled_at"])
        return Response(CampaignOutput(campaign).data)

    @extend_schema(request=None, responses=CampaignOutput)
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """Take the audience and the control group now and start sending in the background."""
        campaign = services.campaign_start(actor=request.user, campaign=self.get_object())
        return Response(CampaignOutput(self.agency_queryset().get(pk=campaign.pk)).data)

    @extend_schema(request=None, responses=CampaignOutput)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        campaign = services.campaign_cancel(actor=request.user, campaign=self.get_object())
        return Response(CampaignOutput(self.agency_queryset().get(pk=campaign.pk)).data)

    @extend_schema(responses=CampaignResultsOutput)
    @action(detail=True, methods=["get"])
    def results(self, request, pk=None):
        return Response(CampaignResultsOutput(selectors.campaign_results(self.get_object())).data)

    @extend_schema(request=CampaignBounceInput, responses=CampaignBounceOutput)
    @action(detail=True, methods=["post"])
    def bounce(self, request, pk=None):
        """Record a bounce that came back later for an address this campaign mailed."""
        data = CampaignBounceInput(data=request.data)
        data.is_valid(raise_exception=True)
        recipient = services.recipient_bounce(actor=request.user, campaign=self.get_object(), **data.validated_data)
        return Response({"email": recipient.email, "status": recipient.status})


# --- consent --------------------------------------------------------------------------------------

class MarketingConsentOutput(serializers.Serializer):
    customer = serializers.IntegerField()
    state = serializers.ChoiceField(choices=["opt_in", "opt_out", "unsubscribed", "bounced", "unknown"])
    may_email = serializers.BooleanField(help_text="Opted in, not unsubscribed or bounced, and has an address.")
    source = serializers.CharField()
    opted_in_at = serializers.DateTimeField(allow_null=True)
    unsubscribed_at = serializers.DateTimeField(allow_null=True)
    bounced_at = serializers.DateTimeField(allow_null=True)
    bounce_reason = serializers.CharField()


def _consent(customer: Customer) -> dict:
    row = Consent.objects.filter(customer=customer).first()
    return {"customer": customer.pk, "state": selectors.consent_state(row),
            "may_email": bool(row and row.may_email and customer.emails.exists()),
            "source": row.source if row else "", "opted_in_at": row and row.opted_in_at,
            "unsubscribed_at": row and row.unsubscribed_at, "bounced_at": row and row.bounced_at,
            "bounce_reason": row.bounce_reason if row else ""}


class MarketingConsentInput(serializers.Serializer):
    email_opt_in = serializers.BooleanField()
    source = serializers.ChoiceField(choices=Consent.Source.choices, required=False, default=Consent.Source.API)


class ConsentViewSet(AgencyViewSet):
    """A customer's marketing consent, by customer id. Recording it writes the customer's change log."""

    serializer_class = MarketingConsentOutput
    required_caps = {"retrieve": Cap.CUSTOMERS_VIEW, "update": Cap.CUSTOMERS_EDIT}

    def agency_queryset(self):
        return LIVE_CUSTOMERS

    @extend_schema(responses=MarketingConsentOutput)
    def retrieve(self, request, pk=None):
        return Response(MarketingConsentOutput(_consent(self.get_object())).data)

    @extend_schema(request=MarketingConsentInput, responses=MarketingConsentOutput)
    def update(self, request, pk=None):
        customer = self.get_object()
        data = MarketingConsentInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.consent_record(actor=request.user, customer=customer, opt_in=data.validated_data["email_opt_in"],
                                source=data.validated_data["source"], via=ChangeLog.Via.API)
        return Response(MarketingConsentOutput(_consent(customer)).data)
