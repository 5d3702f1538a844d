"""Template context for portal pages: the agency's branding and who is signed in."""
from caravan.tenancy import current_agency
from crm.portal.services import brand_name, portal_settings


def portal(request):
    if getattr(request, "portal_session", None) is None or current_agency() is None:
        return {}
    row = portal_settings()
    customer = getattr(request, "portal_customer", None)  # set by PortalPage's fence
    if customer is None:
        from .base import PortalPage

        customer = PortalPage._signed_in(request)
    return {"portal": row, "brand": brand_name(row), "portal_customer": customer}
