"""The portal's own session: a second cookie (``PORTAL_SESSION_COOKIE``, path ``/portal/``) over Django's
session store, which lives in the agency's schema like staff sessions. A portal session never holds a
staff user, and a staff session never holds a customer, so neither can be used as the other.
"""
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.utils.cache import patch_vary_headers

from crm.portal.services import SESSION_AGE

COOKIE = "caravan_portal"
PREFIX = "/portal/"
CUSTOMER = "portal_customer"
EMAIL = "portal_email"
PENDING = "portal_pending_link"
LANGUAGE = "portal_language"


class PortalSessionMiddleware:
    """Loads ``request.portal_session`` for ``/portal/`` paths and writes its cookie back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.portal_session = SessionStore(request.COOKIES.get(COOKIE)) if request.path.startswith(PREFIX) else None
        response = self.get_response(request)
        session = request.portal_session
        if session is None:
            return response
        patch_vary_headers(response, ("Cookie",))
        if session.is_empty():
            if COOKIE in request.COOKIES:
                response.delete_cookie(COOKIE, path=PREFIX, samesite="Lax")
        elif session.modified and response.status_code < 500:
            session.set_expiry(SESSION_AGE)
            session.save()
            response.set_cookie(COOKIE, session.session_key, max_age=SESSION_AGE, path=PREFIX,
                                secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Lax")
        return response


def sign_in(request, link) -> None:
    """Start a fresh portal session for the customer a spent link names (a new key: no fixation)."""
    session = request.portal_session
    language = session.get(LANGUAGE)
    session.flush()
    session[CUSTOMER] = link.customer_id
    session[EMAIL] = link.email
    if language:
        session[LANGUAGE] = language


def sign_out(request) -> None:
    request.portal_session.flush()
