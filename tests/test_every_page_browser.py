"""Every page of the agency site and of the console, in Chromium, at 390 px and 1400 px, as each role, in both
languages (issue 20, "So it stays fixed").

The pages are generated from the URL maps, as tests/test_fences.py walks them: every ``AgencyPage`` route of
``caravan.urls_tenant`` that answers GET, the sign-in pages a signed-in person opens (``SIGNED_IN_PUBLIC``) and
the ones an anonymous visitor opens (``ANONYMOUS``); every console page of ``caravan.urls_public`` (its views
live in ``console.views``) and its anonymous pages (``CONSOLE_ANONYMOUS``). A detail route gets the id of the newest
record of its kind, as the fence test finds it (``id_model``); the few other path values and query strings are made
in ``agency_pages`` / ``console_pages`` / ``_queries``. A detail route with no record to open is a failure ("not
visited"). Routes left out are in ``SKIPPED``, each with its reason.

Data: one committed agency, ``pages`` (enterprise plan, one staff member per role), filled by the fence test's
seeding (the demo seeders at a small size — customers, corporate accounts and policies, opportunities, tasks,
trips, visits, campaigns, segments, complaints, loyalty, value — and a few rows of each kind they leave out);
deleted after the module. Each role, and the operator, is signed in once, server-side (a session cookie, the
second step passed), in one browser context per role and language (the language cookie); the pages run in three
parallel browser pages (``WORKERS``) of one Chromium (the app server has two gunicorn workers: a third page keeps
them busy while the browser renders). About three minutes on two busy cores (1,000 visits and refusals).

Every visit fails on:

- horizontal overflow: ``document.documentElement.scrollWidth > innerWidth + 1`` (the outermost elements that
  stick out, and are not in a box that scrolls or clips them, are named);
- an HTTP status >= 400 of the page or of anything it loads (stylesheets, scripts, htmx requests fired on load);
- a console error or an uncaught exception (``page.on("console")`` of type error, ``page.on("pageerror")``);
- text not in the page's language (``<html lang>`` is checked too): on a zh-Hans page, Latin-only words of the
  page's visible text (``innerText``, the title, placeholders, button values) that are words of the English msgids
  of locale/zh_Hans/LC_MESSAGES/django.po — less the Latin words the Chinese translations use themselves (API,
  CSV, Caravan…), ``CODES`` and upper-case codes (IT, PVG, CNY); on an English page, Chinese characters.
  Not read: ``<code>``/``<pre>``/``<kbd>``/``<samp>``, Stripe's card field, the language switch and the options
  naming a language in itself (``AUTONYMS``); left out of the text: every string of the agency's data (every text
  column of its schema, the strings in its arrays and JSON, agency, domain, supplier, feed, plan and operator names,
  the agency's slug, schema and plan codes: customer names in either script, e-mail addresses, notes), ``EXAMPLES``
  (help texts that show data in the other script on purpose), ``NAMES`` (names that stay English),
  ``{placeholders}``, HTML snippets, URLs and paths, dotted, hyphenated and snake_case identifiers. A problem names
  the words found with the text around them.

Pages a role may not see (its capabilities, the page's ``permits``) must answer 403 to that role, never a 500;
``VIEW_DECIDES`` names the pages whose view refuses some roles itself (403) or shows a record only to some (404):
such an answer is no failure, and that visit is made again by the admin. Files (``FILES``: ``.csv``, ``.ics``,
downloads) are fetched, not rendered: only their status counts. A fragment (no stylesheet: the live-search pieces)
is checked for status, errors and language, not for overflow.

Sampling, to stay within four minutes on two cores: each page is visited at each of the four
width × language combinations once, and more often when more roles may see it: visit k of page i is made at
combination (i + k) mod 4 by the (i + k)-th role of those that may see it, so every role sees every page it may
see at least once, and every page is seen at both widths in both languages. Each role that may not see a page is
refused it once (a plain request, no rendering), in alternating languages.

Every failure is collected and reported at once: page, role, width, language, problem. ``KNOWN_OVERFLOW`` lists
pages that still overflow at a width while issue 20's phone layout is being done; it must end empty.
``PAGETEST_ONLY=<regex of URL names>`` visits only the matching pages (to look at a failure again).
"""
import asyncio
import os
import re
from decimal import Decimal
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import get_resolver
from django_tenants.utils import schema_context, tenant_context

from accounts.models import User
from accounts.roles import ROLE_CAPS, Role
from frontend.views.base import AgencyPage
from tests.servers import http_status
from tests.conftest import OPERATOR, agency_with_staff, mark_verified
from tests.test_browser import BROWSER_TESTS, CHROMIUM, CHROMIUM_ARGS
from tests.test_fences import ID_KWARGS, NOT_AGENCY_IDS, SUPPLIER, Route, _latest_ids, _seed, _values, _walk, id_model

pytestmark = BROWSER_TESTS

SLUG = "pages"
AGENCY_NAME = "Pages Travel 页面旅行"
PLAN = "pages-test"  # a plan the console's plan page opens (not the agency's: no features of its own)
WIDTHS = (390, 1400)
LANGUAGES = ("en", "zh-hans")
COMBOS = [(390, "en"), (1400, "zh-hans"), (1400, "en"), (390, "zh-hans")]  # visit k of page i: COMBOS[(i+k) % 4]
WORKERS = 3
ONLY = os.environ.get("PAGETEST_ONLY", "")  # a debugging aid: only the pages whose URL name matches this regex
HEIGHT = 900
OPERATOR_ROLE, ANONYMOUS_ROLE = "operator", "anonymous"

# Sign-in pages (frontend.public.PUBLIC_ROUTES) a signed-in staff member opens, and those an anonymous visitor opens.
SIGNED_IN_PUBLIC = ("security", "password_change")
ANONYMOUS = ("login", "password_reset", "password_reset_done", "password_reset_complete", "enquiry_form",
             "enquiry_thanks")
CONSOLE_ANONYMOUS = ("login", "signup", "password_reset")
# Routes not visited, and why.
SKIPPED = {
    "logout": "signs the context out",
    "favicon": "not a page (a redirect to the icon, which every page loads anyway)",
    "two_step": "for a session still before its second step; ours have passed it",
    "two_step_setup": "for a session that must enrol first; ours are enrolled or need no second step",
    "password_reset_confirm": "needs a one-time token of Django's (tests/test_signin_security.py opens it)",
    "invitation_accept": "needs a one-time token of Django's (tests/test_staff.py opens it)",
    "survey_answer": "opened by a signed e-mail link (tests/test_care_web.py)",
    "approval_answer": "opened by a signed e-mail link (tests/test_policies_pages.py)",
    "campaign_unsubscribe": "opened by a signed e-mail link (tests/test_campaigns.py)",
    "care_unsubscribe": "opened by a signed e-mail link (tests/test_loyalty_web.py)",
}
# Pages that need a query string to show anything (else 404), by route name: how to make it from the data.
def _queries() -> dict:
    from crm.visits.models import VisitPlan

    account = VisitPlan.objects.order_by("-pk").values_list("account_id", flat=True).first()
    return {"visit_create": f"?account={account}", "visit_plan_create": f"?account={account}"}


# Pages whose view decides who sees it beyond ``required_cap`` / ``permits`` (403), or shows a record only to some
# (404): such an answer to another role is no failure; that visit is made again by the admin.
VIEW_DECIDES = {
    "service_level_report": "tiers: the report's own rule (403)",
    "service_level_report_csv": "tiers: the report's own rule (403)",
    "service_clock_list": "tiers: the list's own rule (403)",
    "policy_report": "policies: the report's own rule (403)",
    "survey_report": "care: the report's own rule (403)",
    "visit_plan_edit": "visits.services.can_plan_for (403)",
    "visit_plan_create": "visits.services.can_plan_for (403)",
    "task_edit": "a task is shown to its owner and managers (404)",
    "approval_detail": "an approval is shown to those who may decide or follow it (404)",
    "customer_export_detail": "an export is shown to whoever asked for it (404)",
    "customer_export_download": "an export is shown to whoever asked for it (404)",
}
# Files: fetched and their status checked, never rendered.
FILES = re.compile(r"(\.csv|\.ics|\.pdf|/download/|^/customers/export/|^/destinations/attachments/\d+/)$")
# Latin words that are no English on a Chinese page (codes and abbreviations the translations do not happen to use).
CODES = {"id", "ok", "vip", "pnr", "iata", "sku", "utc", "gmt", "cny", "usd", "eur", "jpy", "hkd", "gbp", "pdf", "csv",
         "url", "api", "sms", "en", "zh", "hans", "js"}
# Languages named in their own language: the options of a language choice (and the switch's buttons, [data-lang]).
AUTONYMS = ("简体中文", "English")
# Pages that still overflow (route name → widths), while issue 20's phone layout is being done. Must end empty.
KNOWN_OVERFLOW: dict[str, set[int]] = {}

CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]+")
LATIN_WORD = re.compile(r"[A-Za-z]+")
CODE = re.compile(r"[A-Z]{2,3}")  # country, airport and currency codes (IT, IN, PVG, CNY)
# Not words of a language: {first_name} / {{ agency }} (names of values a text takes), HTML snippets to copy, URLs
# and paths, dotted, hyphenated or snake_case identifiers (caravan.customer-data, data.json, ota_hotel), e-mail
# addresses.
PLACEHOLDER = re.compile(r"\{\{?\s*[\w.]+\s*\}?\}|<[^>\n]+>|(?:https?://|(?<!\w)/)\S*|[\w@]+(?:[.\-@][\w]+)+|\w*_\w*")
# Examples in help texts that are data in the other script on purpose, and why.
EXAMPLES = {
    "中秋节问候": "loyalty Occasion.name's help text: a bilingual occasion name (e.g. 中秋节问候 Mid-Autumn greeting)",
    "王总": "visits met_others' help text: how staff write a Chinese contact's name and title (e.g. 王总 (CFO))",
    "王芳": "the customer name's help text: a name as the customer writes it (e.g. 王芳 or ACME Ltd.)",
    "姓名": "the import page: column names in Chinese are understood (姓名, 邮箱, 生日, 公司…)",
    "邮箱": "the import page, as above", "生日": "the import page, as above", "公司": "the import page, as above",
    "万豪": "the segment builder's hotel chain help: as on the card (e.g. 万豪, Hilton)",
    "日本": "the segment builder's destination help: a destination as trips name it (e.g. 日本, Bali)",
}
# Names that stay English on a Chinese page, and why.
NAMES = {
    "OpenTravel (OTA) hotel XML": "the supplier connector's format: a standard's name (integrations/connectors)",
}
LOCALE = Path(__file__).resolve().parents[1] / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


# --- what counts as English ---------------------------------------------------------------------------------

def _words(text: str) -> set[str]:
    text = re.sub(r"%\(\w+\)[sdfi]|%[sdfi]|\{\w*\}|<[^>]+>|&\w+;", " ", text)
    return {w.lower() for w in LATIN_WORD.findall(text) if len(w) > 1}


def catalogue_words() -> set[str]:
    """Words of the English msgids that never appear in a Chinese translation, less ``CODES``."""
    import polib

    english, kept = set(), set()
    for entry in polib.pofile(str(LOCALE)):
        if entry.obsolete:
            continue
        english |= _words(entry.msgid) | _words(entry.msgid_plural or "")
        kept |= _words(entry.msgstr) | {w for s in entry.msgstr_plural.values() for w in _words(s)}
    return english - kept - CODES


# --- the pages --------------------------------------------------------------------------------------------

@dataclass
class Page:
    site: str  # "agency" or "console"
    name: str  # the URL name
    path: str
    roles: list[str]  # who may see it
    refused: list[str] = field(default_factory=list)  # roles that must get 403


def _may_see(route: Route, users: dict) -> list[str]:
    cap, narrowed = route.cls.required_cap, route.cls.permits is not AgencyPage.permits
    return [role for role in Role.values
            if not (cap and cap not in ROLE_CAPS[role]) and not (narrowed and not route.cls().permits(users[role]))]


def agency_pages(agency, unopened: list[str]) -> list[Page]:
    """The agency's pages; a detail page with no record to open goes on ``unopened`` (a failure)."""
    from crm.customers.models import Phone
    from frontend.views.value import EXPORTS
    from integrations.models import Supplier

    with tenant_context(agency):
        users = {role: User.objects.get(email=f"{role}@{SLUG}.test") for role in Role.values}
        special = {"screen_pop": {"number": Phone.objects.order_by("pk").values_list("number", flat=True).first()},
                   "value_export": {"what": EXPORTS[0]},
                   "agency_feeds:feed_create": {"supplier_pk": Supplier.objects.get(code=SUPPLIER).pk}}
        queries = _queries()
        pages = []
        for route in _walk(get_resolver("caravan.urls_tenant")):
            if "format" in route.kwargs or route.name in SKIPPED or route.pattern.startswith("api/"):
                continue
            if route.fence == "page" and route.methods == ["get"]:
                roles = _may_see(route, users)
            elif route.fence is None and route.name in SIGNED_IN_PUBLIC:
                roles = list(Role.values)
            elif route.fence is None and route.name in ANONYMOUS:
                roles = [ANONYMOUS_ROLE]
            else:
                continue
            if route.name in special:
                values = special[route.name]
            elif any(k in route.kwargs for k in ID_KWARGS) and route.name not in NOT_AGENCY_IDS:
                model = id_model(route)
                ids = _latest_ids(agency, model) if model else []
                if not ids:
                    unopened.append(f"agency {route} ({route.name}): " + (
                        "the seeded agency has no record for its id (tests/test_fences.py _seed)" if model else
                        "no model known for its id (tests/test_fences.py id_models)"))
                    continue
                values = _values(route, ids[0])
            else:
                values = _values(route)
            refused = [role for role in Role.values if role not in roles] if route.fence == "page" else []
            pages.append(Page("agency", route.name, route.url(**values) + queries.get(route.name, ""), roles, refused))
    connection.set_schema_to_public()
    return pages


def console_pages(agency, unopened: list[str]) -> list[Page]:
    from billing.models import Plan
    from crm.destinations.models import Article
    from integrations.models import Feed, FeedRun, Supplier
    from tenants.portability.models import AgencyExport

    supplier = Supplier.objects.get(code=SUPPLIER)
    feed = Feed.objects.unscoped().filter(agency=agency).latest("pk")
    values = {
        "console:agency": {"slug": SLUG},
        "console:export_download": {"slug": SLUG,
                                    "pk": AgencyExport.objects.unscoped().filter(agency=agency).latest("created_at").pk},
        "console:plan_edit": {"pk": Plan.objects.get(code=PLAN).pk},
        "integrations:supplier_edit": {"pk": supplier.pk},
        "integrations:feed_create": {"supplier_pk": supplier.pk},
        "integrations:feed": {"pk": feed.pk},
        "integrations:feed_edit": {"pk": feed.pk},
        "integrations:run": {"pk": FeedRun.objects.unscoped().filter(feed=feed).latest("pk").pk},
    }
    shared = Article.objects.order_by("-pk").values_list("pk", flat=True).first()  # the operators' shared base
    if shared:
        values["console:destination"] = {"pk": shared}
    pages = []
    for route in _walk(get_resolver("caravan.urls_public")):
        if route.name in SKIPPED or route.pattern.startswith("api/"):
            continue
        is_console = route.cls is not None and route.cls.__module__.startswith("console.views") and hasattr(route.cls, "get")
        if route.name in CONSOLE_ANONYMOUS:
            roles = [ANONYMOUS_ROLE]
        elif is_console and route.name != "signup":
            roles = [OPERATOR_ROLE]
        else:
            continue
        if route.kwargs and route.name not in values:
            unopened.append(f"console {route} ({route.name}): no path values for it (console_pages)")
            continue
        pages.append(Page("console", route.name, route.url(**values.get(route.name, {})), roles))
    return pages


# --- the agency's data: text that may be in either language ----------------------------------------------------

NOT_SHOWN = re.compile(r"^(auth_permission|django_content_type|django_migrations|django_session|caravan_template_snapshot"
                       r"|axes_.*|.*_historical.*)$")


PIECES = re.compile(r"\n|\{\{?\s*[\w.]+\s*\}?\}")


def data_strings(agency) -> list[str]:
    """Every value of a text column of the agency's schema (and the public names pages show), longest first."""
    found = set()
    with connection.cursor() as cursor:
        cursor.execute("""SELECT table_schema, table_name, column_name FROM information_schema.columns
                          JOIN information_schema.tables USING (table_schema, table_name)
                          WHERE table_type = 'BASE TABLE' AND data_type IN ('text', 'character varying')
                            AND table_schema = %s""", [agency.schema_name])
        columns = [row for row in cursor.fetchall() if not NOT_SHOWN.match(row[1])]
        columns += [("public", "tenants_agency", "name"), ("public", "tenants_domain", "domain"),
                    ("public", "integrations_supplier", "name"), ("public", "integrations_feed", "name"),
                    ("public", "billing_plan", "name"), ("public", "accounts_user", "full_name"),
                    ("public", "accounts_user", "email")]
        # Arrays of text (tags, interests) and the strings inside JSON (preferences, filters).
        cursor.execute("""SELECT table_name, column_name, data_type FROM information_schema.columns
                          JOIN information_schema.tables USING (table_schema, table_name)
                          WHERE table_type = 'BASE TABLE' AND table_schema = %s
                            AND (udt_name IN ('_text', '_varchar') OR data_type IN ('json', 'jsonb'))""",
                       [agency.schema_name])
        nested = [(agency.schema_name, *row) for row in cursor.fetchall() if not NOT_SHOWN.match(row[0])]
        # The operators' shared destination base (public schema), which agencies read and copy.
        cursor.execute("""SELECT table_name, column_name, data_type, udt_name FROM information_schema.columns
                          JOIN information_schema.tables USING (table_schema, table_name)
                          WHERE table_type = 'BASE TABLE' AND table_schema = 'public'
                            AND table_name LIKE 'destinations\\_%%'""")
        for table, column, kind, udt in cursor.fetchall():
            if kind in ("text", "character varying"):
                columns.append(("public", table, column))
            elif udt in ("_text", "_varchar") or kind in ("json", "jsonb"):
                nested.append(("public", table, column, kind))
        values = []
        for schema, table, column in columns:
            cursor.execute(f'SELECT DISTINCT "{column}" FROM "{schema}"."{table}" '
                           f'WHERE length("{column}") BETWEEN 2 AND 5000 LIMIT 5000')
            values += [value for (value,) in cursor.fetchall()]
        for schema, table, column, kind in nested:
            leaves = (f"jsonb_path_query(t.\"{column}\"::jsonb, 'strict $.** ? (@.type() == \"string\")') #>> '{{}}'"
                      if kind in ("json", "jsonb") else f'unnest(t."{column}")')
            cursor.execute(f'SELECT DISTINCT v FROM (SELECT {leaves} AS v FROM "{schema}"."{table}" t) s '
                           f'WHERE length(v) BETWEEN 2 AND 5000 LIMIT 5000')
            values += [value for (value,) in cursor.fetchall()]
        for value in values:  # the value, and its lines and the pieces between its placeholders
            found |= {piece.strip() for piece in [value, *PIECES.split(value)] if piece and piece.strip()}
        # Identifiers pages show as they are: the agency's slug and schema, plan codes.
        cursor.execute("SELECT slug, schema_name, plan FROM public.tenants_agency WHERE id = %s", [agency.pk])
        identifiers = set(cursor.fetchone())
        cursor.execute("SELECT code FROM public.billing_plan")
        identifiers |= {code for (code,) in cursor.fetchall()}
    # Lower-case codes (choices stored as "service", "passport") are not data a page shows as such.
    found = {v for v in found if not re.fullmatch(r"[a-z0-9_\-]+", v) and (CJK.search(v) or len(v) > 2)} | identifiers
    return sorted(found, key=len, reverse=True)


def without(text: str, strings: list[str]) -> str:
    for value in strings:
        if value in text:
            text = text.replace(value, " ")
    return text


# --- the agency, signed in -----------------------------------------------------------------------------------

@dataclass
class Setup:
    pages: list[Page]
    unopened: list[str]  # detail pages with no record to open
    cookies: dict  # role → session cookie value, per site
    data_cjk: list[str]
    data_latin: list[str]
    english: set[str]


def _session(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.fixture(scope="module")
def plan(django_db_setup, django_db_blocker):
    """The committed agency ``pages``, filled; its staff's and the operator's sessions; the pages to visit."""
    from django.contrib.sessions.models import Session

    from billing.models import Plan
    from integrations.models import Supplier
    from tenants.services import agency_delete

    from accounts.mfa.models import KnownDevice, SessionRecord

    agency, operator_session, shared_before, devices_before = None, None, None, None
    with django_db_blocker.unblock():
        try:
            agency = agency_with_staff(SLUG, name=AGENCY_NAME, plan="enterprise")
            # After onboarding: with any plan on record, onboarding accepts only the plans on record.
            Plan.objects.create(code=PLAN, name="Pages 测试版", seat_price_month=Decimal("99"),
                                seat_price_year=Decimal("990"), active=False)
            cookies = {}
            with tenant_context(agency):
                _seed(agency)
                for role in Role.values:
                    user = User.objects.get(email=f"{role}@{SLUG}.test")
                    client = Client(HTTP_HOST=f"{SLUG}.localhost")
                    client.force_login(user)
                    mark_verified(client, user)
                    cookies[role] = _session(client)
            connection.set_schema_to_public()
            with schema_context("public"):
                from crm.destinations.demo import seed_shared
                from crm.destinations.models import Article

                shared_before = set(Article.objects.values_list("pk", flat=True))
                operator = User.objects.get(email=OPERATOR)
                devices_before = set(KnownDevice.objects.filter(user=operator).values_list("pk", flat=True))
                seed_shared(operator)  # the operators' shared destination base (when it has none)
                client = Client(HTTP_HOST="localhost")
                client.force_login(operator)
                mark_verified(client, operator)
                cookies[OPERATOR_ROLE] = operator_session = _session(client)
            with tenant_context(agency):
                strings = data_strings(agency)  # after the shared base is seeded: its articles are data too
            connection.set_schema_to_public()
            unopened = []
            pages = agency_pages(agency, unopened) + console_pages(agency, unopened)
            yield Setup(pages, unopened, cookies,
                        data_cjk=[s for s in strings if CJK.search(s)] + list(EXAMPLES),
                        data_latin=[s for s in strings if LATIN_WORD.search(s)] + list(NAMES),
                       english=catalogue_words())
        finally:
            connection.set_schema_to_public()
            if operator_session:  # the session, and what the browser's visits recorded of it (accounts.mfa)
                Session.objects.filter(session_key=operator_session).delete()
                SessionRecord.objects.filter(session_key=operator_session).delete()
            if devices_before is not None:
                KnownDevice.objects.filter(user__email=OPERATOR).exclude(pk__in=devices_before).delete()
            if agency is not None:
                agency.refresh_from_db()
                agency_delete(agency=agency, confirm_slug=SLUG, actor="tests")
            Supplier.objects.filter(code=SUPPLIER).delete()
            Plan.objects.filter(code=PLAN).delete()
            if shared_before is not None:
                from crm.destinations.models import Article

                with schema_context("public"):
                    Article.objects.exclude(pk__in=shared_before).delete()


# --- the visits ------------------------------------------------------------------------------------------------

@dataclass
class Job:
    page: Page
    role: str
    language: str
    width: int | None  # None: a refusal, asked without rendering

    def label(self) -> str:
        where = f"{self.width}px" if self.width else "request"
        return f"{self.page.site} {self.page.path} ({self.page.name}) as {self.role}, {where}, {self.language}"


def jobs(pages: list[Page]) -> list[Job]:
    made = []
    for i, page in enumerate(pages):
        for k in range(max(len(COMBOS), len(page.roles))):
            width, language = COMBOS[(i + k) % len(COMBOS)]
            made.append(Job(page, page.roles[(i + k) % len(page.roles)], language, width))
        for j, role in enumerate(page.refused):
            made.append(Job(page, role, LANGUAGES[(i + j) % 2], None))
    return made


# In the page: its size (and, when it overflows, the outermost elements that stick out past the right edge and are
# not inside a box that clips or scrolls them), whether it is a whole page, its language and its visible text.
LOOK = """(autonyms) => {
  const d = document.documentElement, w = window.innerWidth;
  const name = e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
    (e.classList.length ? "." + [...e.classList].slice(0, 2).join(".") : "");
  const clipped = e => { for (let a = e.parentElement; a && a !== d; a = a.parentElement)
    if (getComputedStyle(a).overflowX !== "visible") return true; return false; };
  const widest = [];
  if (d.scrollWidth > w + 1 && document.body) {
    for (const e of document.body.querySelectorAll("*")) {
      const r = e.getBoundingClientRect();
      if (r.right <= w + 1 || r.width === 0) continue;
      const p = e.parentElement.getBoundingClientRect();
      if (p.right <= w + 1 && !clipped(e)) widest.push(`${name(e)} ${Math.round(r.width)}px wide, right edge ${Math.round(r.right)}`);
      if (widest.length >= 3) break;
    }
  }
  const extra = [...document.querySelectorAll("input[placeholder], textarea[placeholder]")]
    .filter(e => !e.closest("#card-element")).map(e => e.placeholder)
    .concat([...document.querySelectorAll("input[type=submit][value], input[type=button][value]")].map(e => e.value));
  const size = {scroll: d.scrollWidth, inner: w, widest};
  // Code (raw values, keys, examples of syntax) is in no language, and Stripe's card field speaks Stripe's:
  // hidden before the text is read.
  document.querySelectorAll("code, kbd, samp, pre, #card-element").forEach(e => e.style.setProperty("display", "none"));
  // The language switch and language choices name each language in that language.
  document.querySelectorAll("[data-lang], option").forEach(e => {
    if (e.matches("[data-lang]") || autonyms.includes(e.textContent.trim())) e.textContent = ""; });
  return {...size, whole: !!document.querySelector("link[rel=stylesheet]"), lang: d.lang || "",
          text: [document.title, document.body ? document.body.innerText : "", ...extra].join("\\n")};
}"""


def _in_context(text: str, found: list[str]) -> str:
    """The first few of ``found`` with the text around them, so that the string is easy to find."""
    shown = []
    for item in found[:3]:
        at = text.find(item)
        shown.append("«" + re.sub(r"\s+", " ", text[max(0, at - 25):at + len(item) + 25]).strip() + "»")
    return "; ".join(shown)


def language_problems(text: str, language: str, plan: Setup) -> list[str]:
    text = PLACEHOLDER.sub(" ", without(text, plan.data_cjk if language == "en" else plan.data_latin))
    if language == "en":
        runs = sorted(set(CJK.findall(text)))
        return [f"Chinese on an English page: {' | '.join(runs[:12])} ({_in_context(text, runs)})"] if runs else []
    english = sorted({w for w in LATIN_WORD.findall(text) if w.lower() in plan.english and not CODE.fullmatch(w)})
    if not english:
        return []
    where = [m.group() for m in re.finditer(r"\b(" + "|".join(english) + r")\b", text)]
    return [f"English words on a Chinese page: {', '.join(english[:20])} ({_in_context(text, where)})"]


class Watch:
    """What went wrong in one browser page since the last ``reset``."""

    def __init__(self, page):
        self.page, self.errors, self.bad, self.width = page, [], [], None
        page.on("console", lambda m: self.errors.append(f"console error: {m.text[:300]}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(
            f"uncaught exception: {str(e)[:200]} {' '.join((getattr(e, 'stack', '') or '').splitlines()[1:2])[:200]}"))
        page.on("response", lambda r: self.bad.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)

    def reset(self):
        self.errors.clear()
        self.bad.clear()


AGAIN_AS_ADMIN = "again as admin"


async def _visit(job: Job, context, watch: Watch, base: str, plan: Setup) -> list[str]:
    url = base + job.page.path
    if job.width is None or FILES.search(job.page.path.split("?")[0]):
        # A plain request (Python's resolver does not know *.localhost: 127.0.0.1 with the Host header).
        host = urlsplit(base).netloc
        cookie = "; ".join(f"{c['name']}={c['value']}" for c in await context.cookies(url))
        status = await asyncio.to_thread(http_status, f"http://127.0.0.1:{urlsplit(base).port}{job.page.path}", host,
                                         timeout=30, headers={"Cookie": cookie})
        if job.width is None:
            return [] if status == 403 else [f"answered {status}, not 403"]
        if status in (403, 404) and job.page.name in VIEW_DECIDES and job.role != Role.ADMIN:
            return [AGAIN_AS_ADMIN]
        return [f"HTTP {status}"] if status is None or status >= 400 else []
    page = watch.page
    if watch.width != job.width:
        await page.set_viewport_size({"width": job.width, "height": HEIGHT})
        watch.width = job.width
    watch.reset()
    try:
        response = await page.goto(url, wait_until="load")
        await page.wait_for_function("() => !document.querySelector('.htmx-request')", timeout=5_000)
    except Exception as e:  # noqa: BLE001  (a download, a timeout: reported, the run goes on)
        if "Download is starting" in str(e):
            return [f"{job.page.path} is a file: add it to FILES"]
        return [f"could not be opened: {str(e).splitlines()[0][:200]}"]
    if response is not None and response.status in (403, 404) and job.page.name in VIEW_DECIDES \
            and job.role != Role.ADMIN:
        return [AGAIN_AS_ADMIN]
    problems = list(dict.fromkeys(watch.bad + watch.errors))
    if "/accounts/login/" in page.url and "/accounts/login/" not in job.page.path:
        return problems + ["sent to the sign-in page"]
    look = await page.evaluate(LOOK, list(AUTONYMS))
    if look["whole"]:
        if look["lang"] != job.language:
            problems.append(f'<html lang="{look["lang"]}">')
        if look["scroll"] > look["inner"] + 1 and job.width not in KNOWN_OVERFLOW.get(job.page.name, ()):
            problems.append(f"overflows: {look['scroll']}px wide in {look['inner']}px ({'; '.join(look['widest'])})")
    return problems + language_problems(look["text"], job.language, plan)


async def browse(plan: Setup, server) -> tuple[list[str], int]:
    from playwright.async_api import async_playwright

    todo = jobs([p for p in plan.pages if re.search(ONLY, p.name)] if ONLY else plan.pages)
    queue: asyncio.Queue = asyncio.Queue()
    for job in todo:
        queue.put_nowait(job)
    failures = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        contexts = {}
        for role in [*Role.values, OPERATOR_ROLE, ANONYMOUS_ROLE]:
            for language in LANGUAGES:
                context = await browser.new_context(locale="en-US" if language == "en" else "zh-CN",
                                                    viewport={"width": WIDTHS[-1], "height": HEIGHT})
                context.set_default_timeout(10_000)
                cookies = [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": server.url(slug)}
                           for slug in (SLUG, None)]
                if role in plan.cookies:
                    cookies.append({"name": settings.SESSION_COOKIE_NAME, "value": plan.cookies[role],
                                    "url": server.url(None if role == OPERATOR_ROLE else SLUG)})
                await context.add_cookies(cookies)
                contexts[role, language] = context

        async def worker():
            watches = {}
            while True:
                try:
                    job = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                key = (job.role, job.language)
                if key not in watches:
                    watches[key] = Watch(await contexts[key].new_page())
                base = server.url(SLUG if job.page.site == "agency" else None, "").rstrip("/")
                problems = await _visit(job, contexts[key], watches[key], base, plan)
                if problems == [AGAIN_AS_ADMIN]:
                    queue.put_nowait(Job(job.page, Role.ADMIN, job.language, job.width))
                    continue
                failures.extend(f"{job.label()}: {problem}" for problem in problems)

        await asyncio.gather(*(worker() for _ in range(WORKERS)))
        await browser.close()
    return failures, len(todo)


def test_every_page_in_both_languages_at_both_widths_as_each_role(app_server, plan):
    names = {(p.site, p.name) for p in plan.pages}
    assert ("agency", "customer_detail") in names and ("agency", "pipeline_board") in names, names
    assert ("console", "console:agencies") in names, names
    assert not set(KNOWN_OVERFLOW) - {p.name for p in plan.pages}, "KNOWN_OVERFLOW names pages that are gone"
    failures, visits = asyncio.run(browse(plan, app_server))
    failures += [f"{page}: not visited" for page in plan.unopened]
    assert ONLY or visits >= 4 * len(plan.pages)
    by_page = defaultdict(list)
    for failure in sorted(failures):
        by_page[failure.split(" as ")[0]].append(failure)
    assert not failures, f"{len(failures)} problems on {len(by_page)} pages ({visits} visits):\n" + "\n".join(
        sorted(failures))


def test_the_page_look_finds_overflow_and_reads_text_as_a_reader_would():
    """LOOK (run in every page) sees a page wider than the window and names what sticks out, but not a table that
    scrolls in its own box; it reads the visible text without code, language names and the language switch."""
    from tests.test_browser import chromium_page

    with chromium_page() as page:
        page.set_viewport_size({"width": 390, "height": 800})
        page.set_content("""<html lang="en"><head><link rel="stylesheet" href="data:text/css,"></head><body>
            <div style="overflow-x:auto"><table style="width:900px"><tr><td>wide but boxed</td></tr></table></div>
            <p>Shown <code>raw_key</code> <span hidden>hidden</span></p>
            <select><option>简体中文</option><option>English</option><option>Other</option></select>
            <button data-lang="zh-hans">中文</button>
            <input placeholder="Search"><div id="card-element"><input placeholder="exp_month"></div></body></html>""")
        look = page.evaluate(LOOK, list(AUTONYMS))
        assert look["scroll"] <= look["inner"] + 1 and look["whole"] and look["lang"] == "en", look
        assert "Shown" in look["text"] and "Other" in look["text"] and "Search" in look["text"], look["text"]
        for absent in ("raw_key", "hidden", "简体中文", "中文", "exp_month"):
            assert absent not in look["text"], (absent, look["text"])
        page.set_content('<html><body><p id="long" style="width:531px">wide</p></body></html>')
        look = page.evaluate(LOOK, list(AUTONYMS))
        assert look["scroll"] > look["inner"] + 1 and not look["whole"], look
        assert look["widest"] and look["widest"][0].startswith("p#long 531px wide"), look["widest"]


def test_the_language_checks_find_what_they_look_for():
    """The text checks above flag an English word on a Chinese page and Chinese on an English one, and let data,
    codes, placeholders, URLs and identifiers through (so a pass means something)."""
    data = ["王小明", "Alpha Travel 阿尔法旅行", "The transfer was late."]
    english = catalogue_words()
    assert {"customers", "save", "cancel"} <= english and "api" not in english
    plan = Setup([], [], {}, data_cjk=[d for d in data if CJK.search(d)],
                data_latin=[d for d in data if LATIN_WORD.search(d)], english=english)
    assert not language_problems("Customers\n王小明 · Alpha Travel 阿尔法旅行", "en", plan)
    assert language_problems("Customers\n客户", "en", plan) == ["Chinese on an English page: 客户 («Customers 客户»)"]
    assert not language_problems("客户\nThe transfer was late.\nAPI 令牌 CNY 1,300.00 PVG", "zh-hans", plan)
    assert language_problems("客户 Save 保存 Cancel", "zh-hans", plan) == [
        "English words on a Chinese page: Cancel, Save («客户 Save 保存 Cancel»; «客户 Save 保存 Cancel»)"]
    assert not language_problems("您好 {first_name}，{{ agency }} 祝您节日快乐", "zh-hans", plan)  # placeholders
    assert not language_problems("格式 caravan.customer-data，见 https://x.test/help/ 或 /customers/new/", "zh-hans", plan)
    assert language_problems("≥ ¥500,000.00 in 12 months", "zh-hans", plan)
