"""Operators' pages for suppliers and feeds (console, platform domain), and the signed push endpoint."""
from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from caravan.forms import apply_errors
from console.views import OperatorRequired
from tenants.models import Agency

from . import services
from .connectors import CONNECTORS
from .models import Feed, FeedRun, QuarantinedRecord, Supplier


class SupplierForm(forms.ModelForm):
    class Meta:
        model = Supplier
        fields = ["code", "name", "kind", "active"]


class FeedForm(forms.ModelForm):
    secret = forms.CharField(label=gettext_lazy("Password or token"), required=False, widget=forms.PasswordInput,
                             help_text=gettext_lazy("Stored encrypted; leave empty to keep the current one."))

    class Meta:
        model = Feed
        fields = ["name", "connector", "mode", "endpoint", "auth", "username", "schedule_minutes",
                  "stale_after_minutes", "agency", "active"]

    def __init__(self, *args, supplier: Supplier, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["connector"] = forms.ChoiceField(
            label=gettext_lazy("Format"),
            choices=[(key, c.label) for key, c in CONNECTORS.items() if c.kind == supplier.kind])
        self.fields["agency"].queryset = Agency.objects.agencies()
        self.fields["agency"].required = False
        self.fields["agency"].help_text = gettext_lazy("Empty: shared inventory every agency sees. An agency: its own "
                                                       "negotiated rates, seen by that agency only.")


class SupplierListView(OperatorRequired, View):
    def get(self, request):
        feeds = list(Feed.objects.select_related("supplier", "agency").annotate(run_count=Count("runs")))
        for feed in feeds:
            feed.state = services.health_of(feed)
            feed.last = feed.runs.first()
        return render(request, "integrations/suppliers.html", {
            "suppliers": Supplier.objects.annotate(feed_count=Count("feeds")), "feeds": feeds})


class SupplierFormView(OperatorRequired, View):
    def get(self, request, pk=None):
        supplier = get_object_or_404(Supplier, pk=pk) if pk else None
        return render(request, "integrations/supplier_form.html",
                      {"form": SupplierForm(instance=supplier), "supplier": supplier})

    def post(self, request, pk=None):
        supplier = get_object_or_404(Supplier, pk=pk) if pk else None
        form = SupplierForm(request.POST, instance=supplier)
        if form.is_valid():
            supplier = form.save()
            messages.success(request, _("Supplier %(name)s saved.") % {"name": supplier.name})
            return redirect("integrations:suppliers")
        return render(request, "integrations/supplier_form.html", {"form": form, "supplier": supplier}, status=400)


class FeedFormView(OperatorRequired, View):
    def _objects(self, supplier_pk, pk):
        feed = get_object_or_404(Feed.objects.select_related("supplier"), pk=pk) if pk else None
        supplier = feed.supplier if feed else get_object_or_404(Supplier, pk=supplier_pk)
        return supplier, feed

    def get(self, request, supplier_pk=None, pk=None):
        supplier, feed = self._objects(supplier_pk, pk)
        return render(request, "integrations/feed_form.html",
                      {"form": FeedForm(instance=feed, supplier=supplier), "supplier": supplier, "feed": feed})

    def post(self, request, supplier_pk=None, pk=None):
        supplier, feed = self._objects(supplier_pk, pk)
        form = FeedForm(request.POST, instance=feed, supplier=supplier)
        if form.is_valid():
            saved = form.save(commit=False)
            saved.supplier = supplier
            try:
                services.feed_save(saved, secret=form.cleaned_data["secret"] or None)
            except ValidationError as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, _("Feed %(name)s saved.") % {"name": saved.name})
                return redirect("integrations:feed", pk=saved.pk)
        return render(request, "integrations/feed_form.html",
                      {"form": form, "supplier": supplier, "feed": feed}, status=400)


class FeedDetailView(OperatorRequired, View):
    def get(self, request, pk):
        feed = get_object_or_404(Feed.objects.select_related("supplier", "agency"), pk=pk)
        runs = Paginator(feed.runs.all(), 25).get_page(request.GET.get("page"))
        return render(request, "integrations/feed_detail.html", {
            "feed": feed, "state": services.health_of(feed), "runs": runs,
            "push_url": request.build_absolute_uri(f"/integrations/push/{feed.push_key}/"),
            "new_secret": request.session.pop(f"feed-secret-{feed.pk}", None)})

    def post(self, request, pk):
        feed = get_object_or_404(Feed, pk=pk)
        action = request.POST.get("action")
        if action == "run":
            try:
                services.queue_pull(feed)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, _("A run was queued; refresh in a moment."))
        elif action == "rotate":
            request.session[f"feed-secret-{feed.pk}"] = services.push_secret_rotate(feed)
            messages.success(request, _("New push signing secret made: the old one no longer works."))
        return redirect("integrations:feed", pk=feed.pk)


class RunDetailView(OperatorRequired, View):
    def get(self, request, pk):
        run = get_object_or_404(FeedRun.objects.select_related("feed", "feed__supplier"), pk=pk)
        records = Paginator(QuarantinedRecord.objects.filter(run=run), 50).get_page(request.GET.get("page"))
        return render(request, "integrations/run_detail.html", {"run": run, "records": records})


@csrf_exempt
@require_POST
def push(request, push_key):
    """A supplier pushes a message: verified while it streams to the spool, then run in the background."""
    try:
        length = int(request.headers.get("Content-Length") or 0) or None
    except ValueError:
        length = None
    try:
        feed, path = services.push_receive(push_key=push_key, signature=request.headers.get("X-Caravan-Signature", ""),
                                           body=request, length=length)
    except services.PushRefused as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    services.queue_file(feed, path, trigger=FeedRun.Trigger.PUSH)
    return JsonResponse({"accepted": True}, status=202)
