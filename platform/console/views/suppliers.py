"""The operators' supplier and feed pages (platform domain): every supplier, every feed. The feed
pages themselves are ``frontend.views.feeds`` in the operators' scope."""
from django.contrib import messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View

from frontend.views.feeds import FeedDetailPage, FeedFormPage, RunDetailPage, SupplierForm, feeds_with_health
from integrations.models import Feed, FeedRun, Supplier
from tenants.models import Agency

from .agencies import OperatorRequired


class ConsoleFeeds(OperatorRequired):
    """Operators' scope: every feed, for every agency or for all of them."""
    ns = "integrations"
    list_url = "integrations:suppliers"

    def feeds(self):
        return Feed.objects.unscoped().select_related("supplier", "agency")

    def rows(self, model):
        return model.objects.unscoped()

    def suppliers(self):
        return Supplier.objects.all()

    def owner(self) -> Agency | None:
        return None  # chosen on the form


class SupplierListView(ConsoleFeeds, View):
    def get(self, request):
        return render(request, "integrations/suppliers.html", {
            "suppliers": Supplier.objects.annotate(feed_count=Count("feeds")), "ns": self.ns,
            "feeds": feeds_with_health(self.feeds(), self.rows(FeedRun))})


class SupplierFormView(ConsoleFeeds, View):
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


class FeedFormView(ConsoleFeeds, FeedFormPage, View):
    pass


class FeedDetailView(ConsoleFeeds, FeedDetailPage, View):
    pass


class RunDetailView(ConsoleFeeds, RunDetailPage, View):
    pass
