"""Fence tests generated from the agency site's URL map (after NetBox's ``ViewTestCases``; issue 19).

Every route of ``caravan.urls_tenant`` (the agency pages and ``/api/v1/``) is walked, and:

- its view is fenced by its base class (``AgencyPage``, ``AgencyViewSet`` / ``AgencyAPIView``; the customer
  portal's ``PortalPage``, whose routes ``tests/test_portal_fences.py`` tries) or named
  on the one public list, ``frontend.public.PUBLIC_ROUTES`` (a new route that is neither fails here);
- anonymous: a page answers the log-in page redirect, the API 401;
- every role without the capability a route declares (a page's ``required_cap`` and ``permits(user)``,
  the API's ``required_caps`` for the action) gets 403 — every such role, and every role holding it does not;
- every detail route (an id in the path): the id of a record of the *other* agency answers 404 on this
  agency's host, and the id of one of this agency's own records of the same kind does not (so the
  404 comes from the fence, not from a wrong URL). Which model a route's id names comes from the
  viewset's ``agency_queryset().model``, else from ``id_models()`` by the path before the id; a detail
  route neither gives is a failure naming it.

The two agencies (``home``, ``away``) are made for this module, committed, filled once by the demo
seeders and ``_seed_rows`` (a few of every kind of record) and deleted after it; their id sequences start
at 1,000,000 and 2,000,000, so an id of one is never a record of the other (rows both schemas got from the
template are skipped). Each test runs in its own rolled-back transaction, with clients signed in once.

Sampled, to stay near a minute on two cores: pages are requested with GET when they have one, else POST
with an empty form (the answer must come before any write); API routes with each of their methods, writes
with an empty body (``BODIES``: the few actions that check their input before the record). Cross-agency
requests are made as an admin. Format-suffix twins of API routes (``.json``) are skipped, being the same
views. Capabilities an API view decides itself (``"authenticated"`` plus a check in ``initial()``) are
not declared, so such routes get the anonymous and cross-agency checks only; ``STRICTER`` names the
routes that also refuse some holders of their declared capability.
"""
import re
from dataclasses import dataclass, field

import pytest
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import User
from accounts.roles import ROLE_CAPS, Role
from caravan.api.views import AgencyAPIView, AgencyViewSet
from frontend.public import PUBLIC_ROUTES, reason
from frontend.portal.base import PortalPage
from frontend.views.base import AgencyPage

from .conftest import agency_with_staff, mark_verified

pytestmark = pytest.mark.django_db

URLCONF = "caravan.urls_tenant"
HOME, AWAY = "home", "away"
SUPPLIER = "fences"  # the supplier both agencies' feeds are of (platform-wide; deleted after the module)
METHODS = ("get", "post", "put", "patch", "delete")


# --- the URL map ---------------------------------------------------------------------------------------

@dataclass
class Route:
    pattern: str  # the whole path pattern, as Django prints it
    name: str  # with its namespace
    view: object  # the callback
    cls: type | None
    kwargs: list[str] = field(default_factory=list)

    @property
    def fence(self) -> str | None:
        if self.cls is not None and issubclass(self.cls, AgencyPage):
            return "page"
        if self.cls is not None and issubclass(self.cls, (AgencyViewSet, AgencyAPIView)):
            return "api"
        if self.cls is not None and issubclass(self.cls, PortalPage):
            return "portal"  # the customer portal's own fence: tests/test_portal_fences.py
        return None

    @property
    def methods(self) -> list[str]:
        actions = getattr(self.view, "actions", None)
        if actions:
            return [m for m in METHODS if m in actions]
        found = [m for m in METHODS if hasattr(self.cls, m) and m in self.cls.http_method_names]
        if self.fence == "page":  # GET when the page has one (the page itself), else its form's POST
            return found[:1]
        return found

    def cap(self, method: str) -> str | None:
        """The capability declared for ``method``; None when no capability is declared."""
        if self.fence == "page":
            return self.cls.required_cap
        caps = self.cls.required_caps
        action = (getattr(self.view, "actions", None) or {}).get(method, method)
        needed = caps.get(action, caps.get("*"))
        return None if needed == "authenticated" else needed

    def url(self, **values) -> str:
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values[m.group(1)]), self.pattern)
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), path)
        path = path.replace("/?$", "/").replace("^", "").replace("$", "").replace("\\", "")
        return "/" + path

    def __str__(self):
        return self.pattern


def _walk(resolver, prefix="", namespace=""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = namespace + (f"{entry.namespace}:" if entry.namespace else "")
            yield from _walk(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            pattern = prefix + str(entry.pattern)
            view = entry.callback
            cls = getattr(view, "view_class", None) or getattr(view, "cls", None)
            kwargs = re.findall(r"\(\?P<(\w+)>", pattern) + re.findall(r"(?<!\?P)<(?:\w+:)?(\w+)>", pattern)
            yield Route(pattern, namespace + (entry.name or ""), view, cls, kwargs)


ROUTES = [r for r in _walk(get_resolver(URLCONF)) if "format" not in r.kwargs]
FENCED = [r for r in ROUTES if r.fence in ("page", "api")]
CALLS = [(r, m) for r in FENCED for m in r.methods]  # (route, method) of every fenced route


def _ids(calls):
    return [f"{m.upper()} {r}" for r, m in calls]


# --- which model a route's id names ------------------------------------------------------------------------

ID_KWARGS = ("pk", "customer_id")


def id_models():
    from accounts.models import ApiToken
    from crm.campaigns.models import Campaign, EmailTemplate
    from crm.care.models import Complaint
    from crm.customers.models import Customer, CustomerExport, ImportJob, TravelDocument
    from crm.destinations.models import Article, ArticleImport, Attachment, VisaNote
    from crm.documents.models import DocumentFile
    from crm.loyalty.models import Occasion, Referral, Suggestion, WinBack
    from crm.pipeline.models import Opportunity, Task
    from crm.policies.models import Approval, TravelPolicy
    from crm.segments.models import Segment
    from crm.tiers.models import ServiceClock, TierRecompute
    from crm.trips.models import ChecklistItem, ItineraryItem, Traveler, Trip
    from crm.visits.models import Visit, VisitPlan
    from integrations.models import Feed, FeedRun
    from tenants.portability.models import AgencyExport

    return {
        # The path before the id (less /api/v1/) → the model it names, for views that are not viewsets.
        "customers/": Customer, "accounts/": (TravelPolicy, "account_id"),
        "documents/": TravelDocument, "customers/import/": ImportJob, "customers/exports/": CustomerExport,
        "pipeline/": Opportunity, "opportunities/": Opportunity, "tasks/": Task, "trips/": Trip, "trips/items/": ItineraryItem, "trips/travelers/": Traveler,
        "trips/checklist/": ChecklistItem, "complaints/": Complaint, "approvals/": Approval,
        "visits/": Visit, "visits/plans/": VisitPlan, "campaigns/": Campaign, "campaigns/templates/": EmailTemplate,
        "care/occasions/": Occasion, "care/suggestions/": Suggestion, "care/win-back/": WinBack,
        "care/referrals/": Referral, "segments/": Segment, "settings/suppliers/feeds/": Feed,
        "settings/suppliers/runs/": FeedRun, "staff/": User, "settings/export/": AgencyExport,
        "tokens/": ApiToken, "customer-exports/": CustomerExport, "service-clocks/": ServiceClock,
        "visit-plans/": VisitPlan, "settings/tiers/recompute/": TierRecompute,
        "destinations/": Article, "destinations/visa/": VisaNote, "destinations/attachments/": Attachment,
        "destinations/import/": ArticleImport,
        "document-files/": DocumentFile,
    }


# Routes with a value in the path that names nothing of one agency, and why.
NOT_AGENCY_IDS = {
    "agency_feeds:feed_create": "the id is a platform-wide supplier any agency may connect to",
    "screen_pop": "a phone number, looked up in the agency's own schema",
    "value_export": "the name of a chart",
    "destination_shared_copy": "the id of an article of the operators' shared base (public), which every agency may copy",
    "api:destination_shared": "the id of an article of the operators' shared base (public), which every agency reads",
    "api:destination_shared_copy": "the id of an article of the operators' shared base (public), which every agency may copy",
}
# Other values in a detail path: what makes the route reach its record lookup.
EXTRA = {
    "trip_traveler_action": {"action": "lead"}, "trip_checklist_traveler": {"action": "add"},
    "trip_checklist_item": {"action": "status"}, "campaign_action": {"action": "cancel"},
    "api:destination_article-visa-note-delete": {"nationality": "CN"},
    "care_suggestion_action": {"verb": "dismiss"}, "care_win_back_action": {"verb": "reason"},
}
# Bodies that pass an API action's input check, so that it goes on to look the record up.
BODIES = {
    "api:service-tier-move": {"direction": "up"},
    "api:campaign-schedule": {"scheduled_at": "2031-01-01T09:00:00Z"},
    "api:campaign-bounce": {"email": "nobody@example.com"},
}


def _prefix(route: Route) -> str:
    before = re.split(r"<|\(\?P<", route.pattern)[0]
    return before.replace("^", "").removeprefix("api/v1/")


def id_model(route: Route):
    """The model the route's id names (or ``(model, field)``: the id is that field of the model's rows), or None."""
    if route.cls is not None and issubclass(route.cls, AgencyViewSet):
        from django.contrib.auth.models import AnonymousUser
        from django.test import RequestFactory

        request = RequestFactory().get("/")
        request.user, request.query_params = AnonymousUser(), {}
        try:
            return route.cls(request=request, action="retrieve", kwargs={}, format_kwarg=None).agency_queryset().model
        except Exception:  # noqa: BLE001  (a queryset that needs a request: fall back to the map)
            pass
    return id_models().get(_prefix(route))


DETAIL = [(r, m) for r, m in CALLS if any(k in r.kwargs for k in ID_KWARGS) and r.name not in NOT_AGENCY_IDS]


# --- the two agencies ------------------------------------------------------------------------------------

def _start_ids_at(schema: str, start: int):
    with connection.cursor() as cursor:
        cursor.execute("SELECT format('%%I.%%I', schemaname, sequencename) FROM pg_sequences WHERE schemaname = %s",
                       [schema])
        for (sequence,) in cursor.fetchall():
            cursor.execute("SELECT setval(%s, %s)", [sequence, start])


def _seed(agency):
    """A few records of every kind, through the demo seeders and the services."""
    from crm.campaigns.demo import seed_campaigns
    from crm.customers.demo import seed_customers
    from crm.care.demo_journeys import seed_journeys
    from crm.loyalty.demo import seed_loyalty
    from crm.policies.demo import seed_policies
    from crm.segments.demo import seed_segments
    from crm.tiers.demo import seed_tiers
    from crm.value.demo import seed_value
    from crm.visits.demo import seed_visits

    seed_customers(agency, people=30, companies=4)
    seed_journeys(agency, opportunities=12)
    seed_tiers(agency)
    seed_visits(agency, accounts=2)
    seed_policies(agency, accounts=2)
    seed_value(agency, buyers=10)
    seed_loyalty(agency)
    seed_segments(agency)
    seed_campaigns(agency)
    # Kinds no demo seeder makes.
    from django.core.files.base import ContentFile

    from crm.customers import exports
    from crm.customers import services as customers
    from crm.customers.models import Customer, ImportJob
    from crm.retention import services as retention
    from crm.retention.models import Erasure, RetentionRun
    from integrations import services as feeds
    from integrations.models import Feed, FeedRun, Supplier
    from tenants.portability import services as portability

    admin = User.objects.get(email=f"admin@{agency.slug}.test")
    first = Customer.objects.filter(kind=Customer.Kind.PERSON).order_by("pk").first()
    retention.customer_erase(actor=admin, customer=first, reason="request", confirm=str(first.pk), via=Erasure.Via.PAGE)
    RetentionRun.objects.create(trigger=RetentionRun.Trigger.MANUAL, actor=admin)
    ImportJob.objects.create(created_by=admin, original_name="customers.csv").file.save(
        "customers.csv", ContentFile(b"name\nX\n"), save=True)
    exports.export_run(exports.export_request(actor=admin, filters={}).pk)  # done: its download answers
    customers.document_add(actor=None, customer=Customer.objects.filter(kind=Customer.Kind.PERSON).latest("pk"),
                           kind="passport", issuing_country="CN", number=f"E{agency.pk:08d}", via="page")
    supplier = Supplier.objects.get_or_create(code=SUPPLIER, defaults={"name": "Fences hotels", "kind": "hotel"})[0]
    feed = feeds.feed_save(Feed(supplier=supplier, name=f"{agency.slug} rates", connector="ota_hotel", mode="push",
                                agency=agency))
    feeds.run_create(feed, None, FeedRun.Trigger.MANUAL)
    portability.export_run(portability.export_request(agency=agency, actor=admin.email).pk)
    _seed_rows(admin)


def _seed_rows(admin):
    """Rows of the kinds the seeders above leave out at this size (test data: made directly)."""
    from datetime import timedelta

    from django.utils import timezone

    from crm.care import services as care
    from crm.care.models import Survey
    from crm.customers.models import Customer
    from crm.loyalty.models import Occasion, Suggestion, WinBack
    from crm.loyalty.services import referrals
    from crm.tiers.models import ServiceClock, TierRecompute
    from crm.trips.models import ChecklistItem, Traveler, Trip

    now = timezone.now()
    people = list(Customer.objects.filter(kind=Customer.Kind.PERSON, merged_into__isnull=True).order_by("-pk")[:3])
    trip = Trip.objects.filter(survey__isnull=True).latest("pk")
    care.complaint_log(actor=admin, customer=trip.customer, category="service", severity="low",
                       description="The transfer was late.", trip=trip)
    Survey.objects.create(trip=trip, customer=trip.customer)
    ChecklistItem.objects.create(traveler=Traveler.objects.latest("pk"), document=ChecklistItem.Document.PASSPORT)
    ServiceClock.objects.create(kind=ServiceClock.Kind.values[0], customer=people[0], tier_name="Gold", target_hours=4,
                                started_at=now, due_at=now + timedelta(hours=4), key=f"fences-{people[0].pk}")
    TierRecompute.objects.create(requested_by=admin, status=TierRecompute.Status.DONE, finished_at=now)
    Occasion.objects.create(name="Fences", kind=Occasion.Kind.values[0], days_before=3, active=False)
    Suggestion.objects.create(customer=people[0], festival=Suggestion._meta.get_field("festival").choices[0][0],
                              year=now.year + 1, break_starts_on=now.date(), break_ends_on=now.date() + timedelta(days=3))
    WinBack.objects.create(customer=people[1], why=WinBack.Why.values[0])
    referrals.referral_record(actor=admin, referrer=people[1], referred=people[2])
    from crm.documents.services import file_upload  # a scan (a JPEG's first bytes), stored encrypted
    file_upload(actor=admin, person=people[0], kind="photo", data=b"\xff\xd8\xff\xe0fences")
    from django.core.files.base import ContentFile

    from crm.destinations import services as destinations

    article = destinations.article_save(actor=admin, article=None, data={
        "kind": "city", "country": "JP", "city": "Tokyo", "title_en": "Tokyo", "title_zh": "东京"})
    destinations.visa_note_save(actor=admin, article=article, nationality="CN", data={"requirement": "visa",
                                                                                      "checked": True})
    destinations.attachment_add(actor=admin, article=article, upload=ContentFile(b"%PDF-1.4 fences", name="f.pdf"))
    from crm.destinations.models import ArticleImport

    ArticleImport.objects.create(created_by=admin, original_name="fences.md", status=ArticleImport.Status.DONE,
                                 finished_at=now, report={"created": 1, "updated": 0, "errors": [], "saved": True,
                                                          "articles": [article.pk]})


@dataclass
class Site:
    agency: object
    pages: dict  # role → signed-in page client
    api: dict  # role → API client with a token
    anonymous_page: Client
    anonymous_api: APIClient


def _site(agency) -> Site:
    from accounts.scopes import all_scopes
    from accounts.tokens import token_create

    host = f"{agency.slug}.localhost"
    pages, api = {}, {}
    with tenant_context(agency):
        for role in Role.values:
            user = User.objects.get(email=f"{role}@{agency.slug}.test")
            pages[role] = Client(HTTP_HOST=host)
            pages[role].force_login(user)
            mark_verified(pages[role], user)
            api[role] = APIClient(HTTP_HOST=host, HTTP_ACCEPT_LANGUAGE="en")
            secret = token_create(user=user, name="fences", scopes=all_scopes())[1]
            api[role].credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return Site(agency, pages, api, Client(HTTP_HOST=host), APIClient(HTTP_HOST=host, HTTP_ACCEPT_LANGUAGE="en"))


@pytest.fixture(scope="module")
def sites(django_db_setup, django_db_blocker):
    """``home`` and ``away``, committed and filled; deleted after the module."""
    from tenants.services import agency_delete

    made = {}
    with django_db_blocker.unblock():
        try:
            for slug, start in ((HOME, 1_000_000), (AWAY, 2_000_000)):
                agency = agency_with_staff(slug, name=f"Fence {slug}", plan="enterprise",
                                           before_staff=lambda a, start=start: _start_ids_at(a.schema_name, start))
                made[slug] = agency
                with tenant_context(agency):
                    _seed(agency)
                connection.set_schema_to_public()
            yield {slug: _site(agency) for slug, agency in made.items()}
        finally:
            connection.set_schema_to_public()
            for slug, agency in made.items():
                agency.refresh_from_db()
                agency_delete(agency=agency, confirm_slug=slug, actor="tests")
            from integrations.models import Supplier

            Supplier.objects.filter(code=SUPPLIER).delete()


def _latest_ids(agency, model) -> list:
    """The records of ``model`` that belong to ``agency``, newest first (shared rows keyed by agency: its own)."""
    from caravan.tenancy.scoping import AgencyScopedManager

    model, column = model if isinstance(model, tuple) else (model, "pk")
    with tenant_context(agency):
        rows = model.objects.own() if isinstance(model.objects, AgencyScopedManager) else model._base_manager.all()
        return list(rows.order_by("-pk").values_list(column, flat=True)[:50])


def _request(site: Site, role: str | None, route: Route, method: str, **values):
    client = (site.pages if route.fence == "page" else site.api).get(role) if role else \
        (site.anonymous_page if route.fence == "page" else site.anonymous_api)
    url = route.url(**values)
    assert resolve(url, urlconf=URLCONF).func is route.view, f"{url} does not lead to {route.name}"
    extra = {} if route.fence == "page" else {"data": BODIES.get(route.name), "format": "json"}
    response = getattr(client, method)(url, **extra)
    connection.set_schema_to_public()
    return response


PLACEHOLDERS = {"int": 1, "uuid": "00000000-0000-4000-8000-000000000001"}  # any other converter: "x"


def _values(route: Route, pk=None) -> dict:
    """Values for the route's path: ``pk`` for its id (a placeholder of the right shape when None)."""
    converters = {name: kind for kind, name in re.findall(r"(?<!\?P)<(\w+):(\w+)>", route.pattern)}
    values = {k: PLACEHOLDERS.get(converters.get(k, "int" if "(?P<" + k in route.pattern else "str"), "x")
              for k in route.kwargs}
    if pk is not None:
        values.update({k: pk for k in route.kwargs if k in ID_KWARGS})
    return {**values, **EXTRA.get(route.name, {})}


# --- every route is fenced or public ----------------------------------------------------------------------

def test_every_route_is_fenced_or_on_the_public_list():
    loose = [f"{r.pattern} ({r.name or 'no name'}, {r.cls or r.view})" for r in ROUTES if not r.fence and not reason(r.name)]
    assert not loose, (
        "Agency-host routes without a fence: make each view subclass frontend.views.base.AgencyPage (pages) or "
        "caravan.api.views.AgencyViewSet / AgencyAPIView (API), or, if it must answer without an agency sign-in, "
        "add its URL name with the reason to frontend.public.PUBLIC_ROUTES:\n  " + "\n  ".join(loose))


def test_the_public_list_names_only_routes_that_exist_and_are_not_fenced():
    names = {r.name for r in ROUTES} | {r.name.rpartition(":")[0] + ":" for r in ROUTES if ":" in r.name}
    assert not set(PUBLIC_ROUTES) - names, "frontend.public.PUBLIC_ROUTES names routes that are gone"
    fenced_but_listed = [r.name for r in FENCED if reason(r.name)]
    assert not fenced_but_listed, f"fenced routes need no place on the public list: {fenced_but_listed}"


def test_every_detail_route_has_a_known_model():
    unknown = [f"{r.pattern} ({r.name})" for r, _ in DETAIL if id_model(r) is None]
    assert not unknown, ("Detail routes whose id names no known model: add the path before the id to "
                         "tests/test_fences.py id_models(), or the route to NOT_AGENCY_IDS with a reason:\n  "
                         + "\n  ".join(unknown))


def test_a_page_that_runs_code_before_the_fence_is_refused():
    from django.views import View

    with pytest.raises(TypeError, match="dispatch"):
        type("Early", (AgencyPage, View), {"dispatch": lambda self, request, *a, **k: None})

    class Mixin:
        def setup(self, request, *args, **kwargs):
            pass

    with pytest.raises(TypeError, match="setup"):
        type("EarlyMixin", (Mixin, AgencyPage, View), {})


def test_an_api_view_that_fetches_outside_the_fence_is_refused():
    with pytest.raises(TypeError, match="get_object"):
        type("Fetcher", (AgencyViewSet,), {"get_object": lambda self: User.objects.first()})


# --- anonymous --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("route, method", CALLS, ids=_ids(CALLS))
def test_anonymous_is_sent_to_sign_in(sites, route, method):
    home = sites[HOME]
    response = _request(home, None, route, method, **_values(route))
    if route.fence == "page":
        assert response.status_code == 302, response.status_code
        assert response["Location"].startswith(f"/accounts/login/?next="), response["Location"]
    else:
        assert response.status_code == 401, response.status_code
        assert response.json()["error"]["code"] == "not_authenticated"


# --- roles ------------------------------------------------------------------------------------------------

def _narrowed(route: Route) -> bool:
    """A page that overrides ``AgencyPage.permits`` (any of several capabilities opens it)."""
    return route.fence == "page" and route.cls.permits is not AgencyPage.permits


CAPPED = [(r, m) for r, m in CALLS if r.cap(m) or _narrowed(r)]
# Routes that refuse some holders of their declared capability too, and what else they ask.
STRICTER = {
    "api:customer-documents": "adding a travel document also needs documents.view",
    "visit_plan_edit": "a plan is edited by whoever may plan for its account (visits.services.can_plan_for)",
}


@pytest.mark.parametrize("route, method", CAPPED, ids=_ids(CAPPED))
def test_roles_without_the_capability_get_403(sites, route, method):
    home, needed = sites[HOME], route.cap(method)
    model = id_model(route) if (route, method) in DETAIL else None
    pk = (_latest_ids(home.agency, model) or [None])[0] if model else None
    responses = {role: _request(home, role, route, method, **_values(route, pk)) for role in Role.values}
    answers = {role: response.status_code for role, response in responses.items()}
    refused = {role for role, code in answers.items() if code == 403}
    if route.fence == "api":
        assert all(responses[role].json()["error"]["code"] == "permission_denied" for role in refused)
    lacking = {role for role in Role.values if needed and needed not in ROLE_CAPS[role]}
    if _narrowed(route):  # and the page's own permits(user), asked of each role's staff member
        with tenant_context(home.agency):
            lacking |= {role for role in Role.values
                        if not route.cls().permits(User.objects.get(email=f"{role}@{HOME}.test"))}
    assert lacking <= refused, f"{needed}: answers by role {answers}"
    if route.name not in STRICTER:
        assert refused <= lacking, f"{needed}: answers by role {answers} (a stricter view goes in STRICTER)"


# --- the other agency's ids -------------------------------------------------------------------------------

@pytest.mark.parametrize("route, method", DETAIL, ids=_ids(DETAIL))
def test_the_other_agencys_id_is_not_found(sites, route, method):
    home, away, model = sites[HOME], sites[AWAY], id_model(route)
    assert model is not None, f"{route.name}: no model known for its id (test_every_detail_route_has_a_known_model)"
    name = (model[0] if isinstance(model, tuple) else model).__name__
    own, away_ids = _latest_ids(home.agency, model), _latest_ids(away.agency, model)
    # The other agency's newest record whose id is not also one of this agency's (rows both schemas got from
    # the template, default occasions say, have the same ids in both).
    theirs = next((pk for pk in away_ids if pk not in set(own)), None)
    assert own and theirs, f"the seeded agencies have no {name} of their own: add one to tests/test_fences.py _seed"
    own = own[0]
    mine = _request(home, Role.ADMIN, route, method, **_values(route, own)).status_code
    assert mine != 404, f"{route.name}: this agency's own {name} {own} is not found either"
    other = _request(home, Role.ADMIN, route, method, **_values(route, theirs)).status_code
    assert other == 404, f"{route.name}: {name} {theirs} of the other agency answered {other}"
