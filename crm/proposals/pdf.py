"""The proposal's and the confirmed trip's itinerary PDFs, with WeasyPrint (issue 21).

One HTML template per document renders for staff and customer alike (``proposals/pdf/*.html``), in the
active language and time zone. WeasyPrint fetches nothing: the logo is a ``data:`` URI and the fetcher
refuses every other scheme (no network, no files). Chinese needs a CJK font on the machine
(``fonts-noto-cjk``: the Dockerfile and ``make browser`` install it).
"""
import base64
import logging

from django.template.loader import render_to_string

from crm.portal.services import portal_settings
from crm.trips import selectors as trip_selectors
from crm.trips.models import Trip

from . import selectors
from .models import Proposal

# WeasyPrint narrates each step of each render at INFO: noise in the web and worker logs.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)


class Unavailable(RuntimeError):
    """WeasyPrint cannot load here: Pango (its text layout library) is missing (``make pdf`` installs it)."""


def _weasyprint():
    """WeasyPrint, imported when a PDF is made, not when the site starts: without Pango on the machine every
    page but the PDFs still works (the PDF views answer 503)."""
    try:
        import weasyprint
    except OSError as exc:  # cannot load libpango / libgobject
        raise Unavailable(str(exc)) from exc
    return weasyprint


def _fetcher():
    weasyprint = _weasyprint()
    try:  # WeasyPrint ≥ 66: a fetcher object limited to some schemes
        from weasyprint.urls import URLFetcher
    except ImportError:  # pragma: no cover - older WeasyPrint: a fetcher function
        URLFetcher = None
    if URLFetcher is not None:
        return URLFetcher(allowed_protocols=("data",), timeout=1, allow_redirects=False)
    default_url_fetcher = weasyprint.default_url_fetcher

    def fetch(url, *args, **kwargs):
        if not url.startswith("data:"):
            raise ValueError("Only data: URIs are rendered into PDFs.")
        return default_url_fetcher(url, *args, **kwargs)
    return fetch


def _branding() -> dict:
    row = portal_settings()
    logo = ""
    if row.logo and row.logo_type:
        logo = f"data:{row.logo_type};base64,{base64.b64encode(bytes(row.logo)).decode()}"
    return {"logo": logo, "primary": row.primary_colour, "accent": row.accent_colour}


def render(template: str, context: dict) -> bytes:
    html = render_to_string(template, {**context, "branding": _branding()})
    return _weasyprint().HTML(string=html, base_url=None, url_fetcher=_fetcher()).write_pdf()


def proposal_pdf(proposal: Proposal) -> bytes:
    """The proposal as it was sent (its snapshot), with its acceptance when it has one."""
    acceptance = getattr(proposal, "acceptance", None)  # a missing one-to-one is an AttributeError
    return render("proposals/pdf/proposal.html", {"proposal": proposal, "shown": selectors.shown(proposal),
                                                  "acceptance": acceptance})


def itinerary_pdf(trip: Trip) -> bytes:
    """A confirmed trip's final itinerary: items with confirmation numbers, travelers, payments."""
    from crm.portal.services import brand_name

    row = portal_settings()
    items = list(trip.items.order_by("starts_on", "id"))
    travelers = list(trip.travelers.select_related("customer").order_by("-is_lead", "id"))
    payments = [p for p in trip_selectors.trip_payments(trip)]
    return render("proposals/pdf/itinerary.html", {
        "trip": trip, "items": items, "travelers": travelers, "payments": payments,
        "money": trip_selectors.trip_money(trip),
        "brand": {"name": brand_name(row), "email": row.contact_email, "phone": row.contact_phone,
                  "hours": row.contact_hours}})
