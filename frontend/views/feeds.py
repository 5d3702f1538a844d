"""The feed pages (form, detail, run), written once and used in two scopes: the operators' console
(platform domain, every feed: ``console.views.suppliers``) and an agency's settings (its own feeds
only: ``frontend.views.suppliers``). A scope gives ``feeds()``, ``rows(model)`` (the runs and
quarantined records it may read: ``unscoped()`` for operators, the agency's fence otherwise),
``suppliers()``, ``owner()``, ``ns`` and ``list_url``."""
from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from caravan.forms import errors_onto
from tenants.models import Agency

from integrations import services
from integrations.connectors import CONNECTORS
from integrations.models import Feed, FeedRun, QuarantinedRecord, Supplier


class SupplierForm(forms.ModelForm):
    class Meta:
        model = Supplier
        fields = ["code", "name", "kind", "active"]


class FeedForm(forms.ModelForm):
    username = forms.CharField(label=gettext_lazy("User name"), max_length=120, required=False)
    secret = forms.CharField(label=gettext_lazy("Password or token"), required=False, widget=forms.PasswordInput,
                             help_text=gettext_lazy("Stored encrypted; leave empty to keep the current one."))

    class Meta:
        model = Feed
        fields = ["name", "connector", "mode", "endpoint", "auth", "schedule_minutes", "stale_after_minutes",
                  "agency", "active"]

    def __init__(self, *args, supplier: Supplier, owner: Agency | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["connector"] = forms.ChoiceField(
            label=gettext_lazy("Format"),
            choices=[(key, c.label) for key, c in CONNECTORS.items() if c.kind == supplier.kind])
        if owner is not None:  # an agency's own feed: always that agency's
            del self.fields["agency"]
        else:
            self.fields["agency"].queryset = Agency.objects.agencies()
            self.fields["agency"].required = False
            self.fields["agency"].disabled = bool(self.instance.pk)  # its credentials live in the owner's schema
            self.fields["agency"].help_text = gettext_lazy(
                "Empty: shared inventory every agency sees. An agency: its own negotiated rates, seen by that agency "
                "only, with its credentials kept in that agency's data.")
        if self.instance.pk:
            self.fields["username"].initial = services.credential(self.instance).username
        self.order_fields(["name", "connector", "mode", "endpoint", "auth", "username", "secret"])


class FeedFormPage:
    """Create or change a feed in the page's scope (``ConsoleFeeds``, or an agency's own feeds)."""

    def _objects(self, supplier_pk, pk):
        feed = get_object_or_404(self.feeds(), pk=pk) if pk else None
        supplier = feed.supplier if feed else get_object_or_404(self.suppliers(), pk=supplier_pk)
        return supplier, feed

    def _render(self, request, form, supplier, feed, status=200):
        return render(request, "integrations/feed_form.html", {"form": form, "supplier": supplier, "feed": feed,
                                                                "ns": self.ns, "list_url": self.list_url}, status=status)

    def get(self, request, supplier_pk=None, pk=None):
        supplier, feed = self._objects(supplier_pk, pk)
        return self._render(request, FeedForm(instance=feed, supplier=supplier, owner=self.owner()), supplier, feed)

    def post(self, request, supplier_pk=None, pk=None):
        supplier, feed = self._objects(supplier_pk, pk)
        owner = self.owner()
        form = FeedForm(request.POST, instance=feed, supplier=supplier, owner=owner)
        if form.is_valid():
            saved = form.save(commit=False)
            saved.supplier = supplier
            if owner is not None:
                saved.agency = owner
            with errors_onto(form):
                services.feed_save(saved, username=form.cleaned_data["username"],
                                   secret=form.cleaned_data["secret"] or None)
                messages.success(request, _("Feed %(name)s saved.") % {"name": saved.name})
                if feed is None and saved.mode == Feed.Mode.PUSH:
                    request.session[f"feed-secret-{saved.pk}"] = services.push_secret(saved)
                return redirect(f"{self.ns}:feed", pk=saved.pk)
        return self._render(request, form, supplier, feed, status=400)


class FeedDetailPage:
    """A feed's health, settings and runs; run now, new push signing secret, remove."""

    def get(self, request, pk):
        feed = get_object_or_404(self.feeds(), pk=pk)
        runs = Paginator(self.rows(FeedRun).filter(feed=feed), 25).get_page(request.GET.get("page"))
        return render(request, "integrations/feed_detail.html", {
            "feed": feed, "state": services.health_of(feed), "runs": runs, "push_url": services.push_url(feed),
            "ns": self.ns, "list_url": self.list_url, "username": services.credential(feed).username,
            "new_secret": request.session.pop(f"feed-secret-{feed.pk}", None)})

    def post(self, request, pk):
        feed = get_object_or_404(self.feeds(), pk=pk)
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
        elif action == "delete":
            services.feed_delete(feed)
            messages.success(request, _("Feed %(name)s removed with its inventory.") % {"name": feed.name})
            return redirect(self.list_url)
        return redirect(f"{self.ns}:feed", pk=feed.pk)


class RunDetailPage:
    """One run of a feed in the page's scope, with the records it quarantined."""

    def get(self, request, pk):
        run = get_object_or_404(self.rows(FeedRun).select_related("feed", "feed__supplier")
                                .filter(feed__in=self.feeds()), pk=pk)
        records = Paginator(self.rows(QuarantinedRecord).filter(run=run), 50).get_page(request.GET.get("page"))
        return render(request, "integrations/run_detail.html", {"run": run, "records": records, "ns": self.ns})


def feeds_with_health(feeds, runs) -> list[Feed]:
    """The feeds for a list page, each with its health (``state``) and last run (``last``, from
    ``runs``: the scope's ``rows(FeedRun)``)."""
    feeds = list(feeds)
    last_runs = {}
    for run in runs.filter(feed__in=feeds).order_by("feed_id", "-started_at").distinct("feed_id"):
        last_runs[run.feed_id] = run
    for feed in feeds:
        feed.state = services.health_of(feed)
        feed.last = last_runs.get(feed.pk)
    return feeds
