"""API token scopes: read / write per area of the API, and the one rule that says which area a view
belongs to.

A scope is ``"<area>:read"`` or ``"<area>:write"`` (write implies read). A request made with a token
passes only if its view's area is known and the token holds the scope for the method (GET, HEAD,
OPTIONS read; everything else writes); the user's role still decides the rest (``required_caps``).
Sessions (the pages' own htmx calls, the browsable API) are not scoped.

:func:`area_of` derives the area from the view's module, so an endpoint added to an app's ``api.py``
is covered without anyone remembering to; a view whose module is not listed here answers 403 to
every token (fail closed) until it is. A view may name its area itself with ``api_area``.
"""
from functools import cache

from django.utils.translation import gettext_lazy as _

from .roles import ROLE_CAPS, Cap

READ, WRITE = "read", "write"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Views open to every valid token whatever its scopes (who am I; the schema; the router's index).
ANY = "any"
# Operators' API on the platform domain.
OPERATOR = "operator"

# area → (label, capabilities that make reading it useful, capabilities that make writing it useful)
AREAS: dict[str, tuple] = {
    "customers": (_("Customers"), {Cap.CUSTOMERS_VIEW}, {Cap.CUSTOMERS_EDIT, Cap.CUSTOMERS_IMPORT,
                                                       Cap.CUSTOMERS_MANAGE, Cap.DOCUMENTS_REVEAL}),
    "pipeline": (_("Leads and pipeline"), {Cap.PIPELINE_WORK, Cap.PIPELINE_MANAGE}, {Cap.PIPELINE_WORK}),
    "trips": (_("Trips and payments"), {Cap.PIPELINE_WORK, Cap.PAYMENTS_VIEW}, {Cap.PIPELINE_WORK, Cap.PAYMENTS_RECORD}),
    "care": (_("After-sales care"), {Cap.COMPLAINTS_HANDLE, Cap.CUSTOMERS_VIEW}, {Cap.COMPLAINTS_HANDLE}),
    "policies": (_("Travel policies"), {Cap.POLICIES_MANAGE, Cap.PIPELINE_WORK}, {Cap.POLICIES_MANAGE, Cap.PIPELINE_WORK}),
    "tiers": (_("Service tiers"), {Cap.CUSTOMERS_VIEW, Cap.POLICIES_MANAGE}, {Cap.POLICIES_MANAGE, Cap.CUSTOMERS_MANAGE}),
    "visits": (_("Key-account visits"), {Cap.CUSTOMERS_VIEW}, {Cap.CUSTOMERS_EDIT, Cap.PIPELINE_MANAGE}),
    "campaigns": (_("Campaigns"), {Cap.CAMPAIGNS_MANAGE}, {Cap.CAMPAIGNS_MANAGE}),
    "segments": (_("Segments"), {Cap.CAMPAIGNS_MANAGE, Cap.VALUE_VIEW}, {Cap.CAMPAIGNS_MANAGE}),
    "value": (_("Customer value"), {Cap.VALUE_VIEW, Cap.REPORTS_VIEW}, {Cap.REPORTS_VIEW}),
    "loyalty": (_("Loyalty and greetings"), {Cap.CUSTOMERS_VIEW}, {Cap.CUSTOMERS_EDIT, Cap.CAMPAIGNS_MANAGE}),
    "integrations": (_("Suppliers and integrations"), {Cap.PIPELINE_WORK, Cap.SETTINGS_MANAGE},
                     {Cap.PIPELINE_WORK, Cap.SETTINGS_MANAGE}),
    "destinations": (_("Destination knowledge base"), {Cap.KNOWLEDGE_VIEW}, {Cap.KNOWLEDGE_EDIT}),
    "staff": (_("Staff, agency settings and API tokens"), {Cap.STAFF_VIEW}, {Cap.STAFF_MANAGE, Cap.SETTINGS_MANAGE}),
}

# The one place that maps code to areas: the module a view is defined in (longest prefix wins).
AREA_BY_MODULE: dict[str, str] = {
    "crm.customers.api": "customers",
    "crm.customers.api_imports": "customers",
    "crm.pipeline.": "pipeline",
    "crm.trips.": "trips",
    "crm.care.": "care",
    "crm.policies.": "policies",
    "crm.tiers.": "tiers",
    "crm.visits.": "visits",
    "crm.campaigns.": "campaigns",
    "crm.segments.": "segments",
    "crm.value.": "value",
    "crm.loyalty.": "loyalty",
    "crm.destinations.": "destinations",
    "integrations.": "integrations",
    "accounts.": "staff",
    "console.": OPERATOR,
    "drf_spectacular.": ANY,
    "rest_framework.routers": ANY,
}


def area_of(view) -> str | None:
    """The API area ``view`` belongs to, or None (then no token may use it)."""
    declared = getattr(view, "api_area", None)
    if declared:
        return declared
    return _area_of_module(type(view).__module__ if not isinstance(view, type) else view.__module__)


@cache
def _area_of_module(module: str) -> str | None:
    """The longest prefix of AREA_BY_MODULE that ``module`` is in (once per module: every token request asks)."""
    best = None
    for prefix, area in AREA_BY_MODULE.items():
        if (module == prefix or module.startswith(prefix if prefix.endswith(".") else prefix + ".")) and (
                best is None or len(prefix) > len(best[0])):
            best = (prefix, area)
    return best[1] if best else None


def all_scopes() -> list[str]:
    return [f"{area}:{kind}" for area in AREAS for kind in (READ, WRITE)]


# Outside the f-string below: xgettext does not look inside one, so "read"/"write" were never translated.
LEVELS = {READ: _("read"), WRITE: _("write")}


def scope_choices() -> list[tuple[str, str]]:
    return [(f"{area}:{kind}", f"{label}: {LEVELS[kind]}")
            for area, (label, _r, _w) in AREAS.items() for kind in (READ, WRITE)]


def role_scopes(role: str) -> list[str]:
    """The scopes worth giving a token of someone in ``role`` (the token of ``POST auth/token/``)."""
    caps = ROLE_CAPS.get(role, frozenset())
    scopes = []
    for area, (_label, read_caps, write_caps) in AREAS.items():
        if caps & (read_caps | write_caps):
            scopes.append(f"{area}:{READ}")
        if caps & write_caps:
            scopes.append(f"{area}:{WRITE}")
    return scopes


def operator_scopes() -> list[str]:
    return [f"{OPERATOR}:{READ}", f"{OPERATOR}:{WRITE}"]


def allows(scopes, area: str | None, method: str) -> bool:
    """May a token holding ``scopes`` call a view of ``area`` with ``method``? Unknown area: no."""
    if area is None:
        return False
    if area == ANY:
        return True
    held = set(scopes or ())
    if method.upper() in SAFE_METHODS:
        return f"{area}:{READ}" in held or f"{area}:{WRITE}" in held
    return f"{area}:{WRITE}" in held


def valid_scopes(scopes, *, operator: bool = False) -> list[str]:
    """Known scopes, in a stable order; raises ValueError naming an unknown one."""
    known = operator_scopes() if operator else all_scopes()
    unknown = [s for s in scopes if s not in known]
    if unknown:
        raise ValueError(", ".join(unknown))
    return [s for s in known if s in set(scopes)]
