"""E-mail campaign pages (R-CAMP-2, R-CAMP-3): templates with preview, campaigns (draft, test
send, schedule, start, cancel), results with CSV, the consent section of the customer card, and the
public pages an e-mail links to (unsubscribe, open pixel, tracked click) under ``/c/``.

Thin views: writes go through crm.campaigns.services, reads through crm.campaigns.selectors.
"""
import csv
from datetime import datetime

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from accounts.roles import Cap
from caravan.forms import errors_onto
from caravan.tenancy import current_agency, require_agency
from crm.customers import services as crm_services
from crm.campaigns import links, rendering, selectors, services
from crm.campaigns.models import Campaign, Consent, EmailTemplate, Recipient
from crm.customers.exports import _Line, _row
from crm.customers.models import Customer
from crm.segments.models import Segment

from .base import AgencyPage

DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
PIXEL = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
         b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def _aware(moment: datetime) -> datetime:
    """A datetime typed in a form, read in the agency's time zone."""
    if timezone.is_aware(moment):
        moment = moment.replace(tzinfo=None)
    with timezone.override(require_agency().time_zone):
        return timezone.make_aware(moment)


def _local(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    with timezone.override(require_agency().time_zone):
        return timezone.localtime(moment).replace(second=0, microsecond=0, tzinfo=None)


# --- templates ------------------------------------------------------------------------------------

class TemplateForm(forms.ModelForm):
    """Field types and labels; the rules are in ``services.template_save``."""

    class Meta:
        model = EmailTemplate
        fields = ["name", "subject_zh", "body_zh", "subject_en", "body_en"]
        widgets = {"body_zh": forms.Textarea(attrs={"rows": 10}), "body_en": forms.Textarea(attrs={"rows": 10})}

    def _post_clean(self):
        """No model validation here: ``services.template_save`` reports each error on its field."""


class TemplateListView(AgencyPage, View):
    required_cap = Cap.CAMPAIGNS_MANAGE

    def get(self, request):
        return render(request, "frontend/campaigns/templates.html",
                      {"templates": EmailTemplate.objects.order_by("name")})


class TemplateFormView(AgencyPage, View):
    """New (``/campaigns/templates/new/``) or existing template, with its preview for a sample customer."""

    required_cap = Cap.CAMPAIGNS_MANAGE

    def _render(self, request, form, template, status=200):
        return render(request, "frontend/campaigns/template_form.html", {
            "form": form, "template": template, "fields": rendering.FIELDS,
            "preview": services.template_preview(template=template, customer=self._sample(request)) if template else [],
        }, status=status)

    @staticmethod
    def _sample(request) -> Customer | None:
        raw = request.GET.get("customer", "")
        return Customer.objects.filter(pk=raw, merged_into__isnull=True).first() if raw.isdigit() else None

    def get(self, request, pk=None):
        template = get_object_or_404(EmailTemplate, pk=pk) if pk else None
        return self._render(request, TemplateForm(instance=template), template)

    def post(self, request, pk=None):
        template = get_object_or_404(EmailTemplate, pk=pk) if pk else None
        if "delete" in request.POST and template:
            try:
                services.template_delete(actor=request.user, template=template)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
                return redirect("campaign_template_edit", pk=template.pk)
            messages.success(request, _("Template deleted."))
            return redirect("campaign_templates")
        form = TemplateForm(request.POST, instance=template)
        if form.is_valid():
            with errors_onto(form):
                saved = services.template_save(actor=request.user, template=template, **form.cleaned_data)
                messages.success(request, _("Template saved. The preview below shows it for a customer."))
                return redirect("campaign_template_edit", pk=saved.pk)
        return self._render(request, form, template, status=400)


# --- campaigns ------------------------------------------------------------------------------------

class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = ["name", "segment", "template", "control_share", "attribution_days", "cost", "from_name", "reply_to",
                  "rate_per_second"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment"].queryset = Segment.objects.order_by("name")
        self.fields["segment"].required = False
        self.fields["template"].queryset = EmailTemplate.objects.order_by("name")
        self.fields["template"].required = False
        self.fields["name"].required = False  # the service names every missing field at once
        for name in ("control_share", "attribution_days", "rate_per_second"):
            self.fields[name].validators, self.fields[name].max_value = [], None

    def _post_clean(self):
        """No model validation here: ``services.campaign_save`` reports each error on its field."""


class TestSendForm(forms.Form):
    to = forms.EmailField(label=gettext_lazy("Send a test to"))


class ScheduleForm(forms.Form):
    scheduled_at = forms.DateTimeField(label=gettext_lazy("Send at"), widget=DATETIME_INPUT)


class BounceForm(forms.Form):
    email = forms.CharField(label=gettext_lazy("Address that bounced"), max_length=254)
    reason = forms.CharField(label=gettext_lazy("Reason (from the bounce message)"), max_length=300, required=False)


class CampaignListView(AgencyPage, View):
    required_cap = Cap.CAMPAIGNS_MANAGE

    def get(self, request):
        return render(request, "frontend/campaigns/list.html", {
            "campaigns": selectors.campaign_list()[:200], "has_templates": EmailTemplate.objects.exists(),
            "has_segments": Segment.objects.exists()})


class CampaignFormView(AgencyPage, View):
    """Create (``/campaigns/new/``) or change (``/campaigns/<id>/edit/``) a campaign before it starts."""

    required_cap = Cap.CAMPAIGNS_MANAGE

    def _campaign(self, pk) -> Campaign | None:
        if pk is None:
            return None
        campaign = get_object_or_404(Campaign, pk=pk)
        if not campaign.is_editable:
            raise Http404
        return campaign

    def _render(self, request, form, campaign, status=200):
        return render(request, "frontend/campaigns/form.html", {
            "form": form, "campaign": campaign, "has_segments": Segment.objects.exists()}, status=status)

    def get(self, request, pk=None):
        campaign = self._campaign(pk)
        initial = {} if campaign else {"from_name": require_agency().name,
                                       "segment": request.GET.get("segment") or None}
        return self._render(request, CampaignForm(instance=campaign, initial=initial), campaign)

    def post(self, request, pk=None):
        campaign = self._campaign(pk)
        form = CampaignForm(request.POST, instance=campaign)
        if form.is_valid():
            with errors_onto(form):
                saved = services.campaign_save(actor=request.user, campaign=campaign, **form.cleaned_data)
                messages.success(request, _("Campaign saved."))
                return redirect("campaign_detail", pk=saved.pk)
        return self._render(request, form, campaign, status=400)


class CampaignDetailView(AgencyPage, View):
    """A campaign: its settings and audience, the test send, schedule, start and cancel; once started,
    its progress (and the link to the results)."""

    required_cap = Cap.CAMPAIGNS_MANAGE

    def get(self, request, pk):
        campaign = get_object_or_404(Campaign.objects.select_related("segment", "template"), pk=pk)
        return render_detail(request, campaign)


def render_detail(request, campaign, *, test_form=None, schedule_form=None, status=200):
    audience = None
    if campaign.is_editable and campaign.segment_id:
        size = services.audience(campaign.segment.definition).count()
        held = services.control_size(size, campaign.control_share)
        audience = {"size": size, "control": held, "send": size - held}
    return render(request, "frontend/campaigns/detail.html", {
        "campaign": campaign, "audience": audience,
        "test_form": test_form or TestSendForm(initial={"to": request.user.email}),
        "schedule_form": schedule_form or ScheduleForm(initial={"scheduled_at": _local(campaign.scheduled_at)}),
        "counts": selectors.status_counts(campaign) if campaign.started_at else {},
        "timezone": require_agency().time_zone,
    }, status=status)


class CampaignActionView(AgencyPage, View):
    """POST ``/campaigns/<id>/<action>/``: test-send, schedule, start, cancel."""

    required_cap = Cap.CAMPAIGNS_MANAGE

    def post(self, request, pk, action):
        campaign = get_object_or_404(Campaign.objects.select_related("segment", "template"), pk=pk)
        if action == "test-send":
            return self.test_send(request, campaign)
        if action == "schedule":
            return self.schedule(request, campaign)
        try:
            if action == "start":
                campaign = services.campaign_start(actor=request.user, campaign=campaign)
                messages.success(request, _("Campaign started: %(n)s e-mails are being sent in the background.")
                                 % {"n": campaign.recipients.filter(status=Recipient.Status.PENDING).count()})
            elif action == "cancel":
                services.campaign_cancel(actor=request.user, campaign=campaign)
                messages.success(request, _("Campaign cancelled."))
            else:
                raise Http404
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("campaign_detail", pk=campaign.pk)

    def test_send(self, request, campaign):
        form = TestSendForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                try:
                    sent = services.campaign_test_send(actor=request.user, campaign=campaign, to=form.cleaned_data["to"])
                except OSError as exc:  # the mail server did not take it
                    form.add_error("to", _("The mail server did not accept the test: %(error)s") % {"error": exc})
                else:
                    messages.success(request, _("Test sent to %(to)s (%(n)s e-mail(s), one per language).")
                                     % {"to": form.cleaned_data["to"], "n": sent})
                    return redirect("campaign_detail", pk=campaign.pk)
        return render_detail(request, campaign, test_form=form, status=400)

    def schedule(self, request, campaign):
        form = ScheduleForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                services.campaign_schedule(actor=request.user, campaign=campaign,
                                           at=_aware(form.cleaned_data["scheduled_at"]))
                messages.success(request, _("Campaign scheduled."))
                return redirect("campaign_detail", pk=campaign.pk)
        return render_detail(request, campaign, schedule_form=form, status=400)


class CampaignResultsView(AgencyPage, View):
    """Delivery, opens, clicks, unsubscribes; responses, bookings, revenue and margin against the cost,
    for the send group and the control group, and the lift."""

    required_cap = Cap.CAMPAIGNS_MANAGE

    def get(self, request, pk, bounce_form=None, status=200):
        campaign = get_object_or_404(Campaign.objects.select_related("segment", "template"), pk=pk)
        return render(request, "frontend/campaigns/results.html", {
            "campaign": campaign, "results": selectors.campaign_results(campaign),
            "bounce_form": bounce_form or BounceForm(), "currency": require_agency().currency}, status=status)

    def post(self, request, pk):
        """Record a bounce that came back later (staff paste the address from the bounce message)."""
        campaign = get_object_or_404(Campaign, pk=pk)
        form = BounceForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                services.recipient_bounce(actor=request.user, campaign=campaign, **form.cleaned_data)
                messages.success(request, _("Bounce recorded: the address will not be mailed again."))
                return redirect("campaign_results", pk=campaign.pk)
        return self.get(request, pk, bounce_form=form, status=400)


class CampaignResultsCsvView(AgencyPage, View):
    required_cap = Cap.CAMPAIGNS_MANAGE

    def get(self, request, pk):
        campaign = get_object_or_404(Campaign, pk=pk)
        header = [_("customer"), _("e-mail"), _("group"), _("status"), _("sent"), _("opened"), _("clicked"),
                  _("unsubscribed"), _("responded"), _("trips booked"), _("revenue"), _("margin")]
        groups, statuses = dict(Recipient.Group.choices), dict(Recipient.Status.choices)
        writer = csv.writer(_Line())

        def when(moment):
            return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else ""

        def lines():  # UTF-8 with a BOM (Excel reads Chinese), formula-safe cells
            yield "\ufeff" + _row(writer, header)
            for (name, email, group, status, sent, opened, clicked, unsubscribed, responded, trips, revenue,
                 margin) in selectors.recipient_rows(campaign):
                yield _row(writer, [name, email, groups.get(group, group), statuses.get(status, status), when(sent),
                                    when(opened), when(clicked), when(unsubscribed), _("yes") if responded else "",
                                    trips, revenue, margin])

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-results.csv"'
        return response


# --- consent on the customer card -----------------------------------------------------------------

class ConsentForm(forms.Form):
    opt_in = forms.TypedChoiceField(label=gettext_lazy("Marketing e-mail"), coerce=lambda v: v == "yes",
                                    choices=[("yes", gettext_lazy("The customer agrees to marketing e-mail")),
                                             ("no", gettext_lazy("The customer does not want marketing e-mail"))])


class ConsentRecordView(AgencyPage, View):
    required_cap = Cap.CUSTOMERS_EDIT

    def post(self, request, pk):
        customer = crm_services.customer_survivor(get_object_or_404(Customer.objects.select_related("merged_into"),
                                                                    pk=pk))
        form = ConsentForm(request.POST)
        if form.is_valid():
            try:
                services.consent_record(actor=request.user, customer=customer, opt_in=form.cleaned_data["opt_in"])
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, _("Marketing consent recorded."))
        else:
            messages.error(request, _("Choose whether the customer agrees to marketing e-mail."))
        return redirect(f"/customers/{customer.pk}/#consent")


# --- public pages (no sign-in): the links in a campaign e-mail -------------------------------------

def _recipient(kind: str, token: str) -> tuple[Recipient, int | None] | None:
    if current_agency() is None:
        raise Http404
    found = links.read(kind, token)
    if found is None:
        return None
    recipient = Recipient.objects.select_related("customer", "campaign").filter(pk=found[0]).first()
    return (recipient, found[1]) if recipient else None


@method_decorator(csrf_exempt, name="dispatch")  # one-click unsubscribe (RFC 8058) posts from mail providers
class UnsubscribeView(View):
    """The unsubscribe link: a page that asks to confirm (link scanners only GET), and a POST that
    unsubscribes — from the page's button or from the mail program's one-click unsubscribe. The
    signed token is the key; no sign-in."""

    def get(self, request, token):
        found = _recipient(links.UNSUBSCRIBE, token)
        if found is None:
            return render(request, "frontend/campaigns/unsubscribe.html", {"invalid": True}, status=404)
        recipient = found[0]
        done = bool(recipient.unsubscribed_at) or not _may(recipient)
        return render(request, "frontend/campaigns/unsubscribe.html",
                      {"recipient": recipient, "masked": _mask(recipient.email), "done": done, "agency": require_agency()})

    def post(self, request, token):
        found = _recipient(links.UNSUBSCRIBE, token)
        if found is None:
            return render(request, "frontend/campaigns/unsubscribe.html", {"invalid": True}, status=404)
        services.recipient_unsubscribe(recipient=found[0])
        return render(request, "frontend/campaigns/unsubscribe.html",
                      {"recipient": found[0], "masked": _mask(found[0].email), "done": True, "just_now": True,
                       "agency": require_agency()})


def _may(recipient: Recipient) -> bool:
    """Still subscribed (else the page just confirms that they are not)."""
    return Consent.objects.filter(customer_id=recipient.customer_id, email_opt_in=True,
                                  unsubscribed_at__isnull=True).exists()


def _mask(email: str) -> str:
    local, _sep, domain = email.partition("@")
    return (local[:2] + "…" if len(local) > 2 else local[:1] + "…") + "@" + domain


def open_pixel(request, token):
    """The open pixel: a transparent GIF, and the first load recorded."""
    found = _recipient(links.OPEN, token)
    if found is not None:
        services.recipient_opened(recipient_id=found[0].pk)
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store, private"
    return response


def click(request, token):
    """A tracked link: the click recorded, then on to the link written in the campaign (only there)."""
    found = _recipient(links.CLICK, token)
    if found is None or found[1] is None:
        raise Http404
    target = services.recipient_click_target(recipient_id=found[0].pk, index=found[1])
    if target is None:
        raise Http404
    return HttpResponseRedirect(target)
