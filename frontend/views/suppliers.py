"""An agency's own supplier feeds (R-INT-2), in its settings: connect its account with a supplier
(negotiated rates, its own credentials, kept in the agency's schema), watch the feeds' health and
runs, run, rotate, remove. The pages are the operators' feed pages (``frontend.views.feeds``) in the
agency's scope: only its own feeds, and every feed made here is its own."""
from django.db.models import Count, Q
from django.shortcuts import render
from django.views import View

from accounts.roles import Cap
from billing.services import plan_of
from caravan.tenancy import require_agency
from caravan.tenancy.scoping import shared_q
from integrations.models import Feed, FeedRun, Supplier
from .feeds import FeedDetailPage, FeedFormPage, RunDetailPage, feeds_with_health

from .base import AgencyPage


class AgencyFeeds(AgencyPage):
    required_cap = Cap.SETTINGS_MANAGE
    ns = "agency_feeds"
    list_url = "agency_feeds:list"

    def feeds(self):
        return Feed.objects.own().select_related("supplier", "agency")

    def rows(self, model):
        return model.objects.all()  # the agency's fence: shared and its own (narrowed to its feeds by the pages)

    def suppliers(self):
        return Supplier.objects.filter(active=True)

    def owner(self):
        return require_agency()


class AgencyFeedListView(AgencyFeeds, View):
    def get(self, request):
        agency = require_agency()
        feeds = feeds_with_health(self.feeds(), self.rows(FeedRun))
        plan = plan_of(agency)
        suppliers = self.suppliers().annotate(shared_feeds=Count("feeds", filter=shared_q(Feed, "feeds")
                                                                                 & Q(feeds__active=True)))
        return render(request, "integrations/agency_feeds.html", {
            "feeds": feeds, "suppliers": suppliers, "ns": self.ns,
            "in_use": sum(1 for feed in feeds if feed.active), "limit": plan.supplier_feeds if plan else None})


class AgencyFeedFormView(AgencyFeeds, FeedFormPage, View):
    pass


class AgencyFeedDetailView(AgencyFeeds, FeedDetailPage, View):
    pass


class AgencyRunDetailView(AgencyFeeds, RunDetailPage, View):
    pass
