"""The agency-host routes that are neither an ``AgencyPage`` nor an agency API view, and why.

Every other route of ``caravan.urls_tenant`` is fenced by its base class (``frontend.views.base.AgencyPage``,
``caravan.api.views.AgencyViewSet`` / ``AgencyAPIView``); ``tests/test_fences.py`` walks the URL map and
fails for a route that is neither fenced nor named here. Keys are URL names (with their namespace); a
key ending in ``:`` stands for a whole namespace. Adding an entry is a decision a reviewer should see:
say what checks the request instead of the agency fence.
"""

_SIGN_IN = "sign-in, sign-out, password and two-step pages: on both kinds of host, for people not (fully) signed in yet"
_SIGNED_LINK = "opened from an e-mail without signing in: the signed token (salted with the agency's schema) decides"

PUBLIC_ROUTES: dict[str, str] = {
    # Signing in (frontend.urls.auth_urlpatterns; the same routes serve the platform domain).
    "login": _SIGN_IN,
    "logout": _SIGN_IN,
    "password_reset": _SIGN_IN,
    "password_reset_done": _SIGN_IN,
    "password_reset_confirm": _SIGN_IN + "; Django's one-time token, throttled",
    "password_reset_complete": _SIGN_IN,
    "password_change": _SIGN_IN + "; Django's login_required",
    "set_language": "the language switch: stores a choice in the session or the signed-in user's profile",
    "two_step": _SIGN_IN + "; LoginRequiredMixin, SecondFactorMiddleware",
    "two_step_setup": _SIGN_IN + "; LoginRequiredMixin, SecondFactorMiddleware",
    "security": "the signed-in person's own two-step settings, on both kinds of host; LoginRequiredMixin",
    "otp_webauthn:": _SIGN_IN + " (passkeys: django-otp-webauthn, relying party = the request's host)",
    "invitation_accept": "an invited staff member sets a first password: Django's one-time token, throttled",
    # Signed public links (caravan signing; the token carries the agency's schema).
    "survey_answer": _SIGNED_LINK,
    "approval_answer": _SIGNED_LINK + " (the approver of an out-of-policy booking)",
    "visit_calendar": _SIGNED_LINK + " (a staff member's visit calendar feed)",
    "campaign_unsubscribe": _SIGNED_LINK,
    "campaign_open": _SIGNED_LINK + " (the open pixel)",
    "campaign_click": _SIGNED_LINK + " (a tracked link)",
    "care_unsubscribe": _SIGNED_LINK,
    # The agency's public enquiry form (its website links to it).
    "enquiry_form": "the agency's public enquiry form: creates a lead only, rate-limited per client address",
    "enquiry_thanks": "the enquiry form's thank-you page: static",
    # The customer portal's way in (frontend.portal.views.signin): nobody is signed in yet. A single-use,
    # short-lived link or code (stored hashed, rate-limited per address and client) decides; every other
    # portal page is a frontend.portal.base.PortalPage (tests/test_portal_fences.py).
    "portal:sign_in": "the portal's sign-in page: asks for a link by e-mail, rate-limited; says the same for any address",
    "portal:check": "the portal's code page: the code of the link this browser asked for, five tries",
    "portal:link": "the portal's sign-in link: a GET spends nothing, the button spends the single-use link",
    "portal:sign_out": "ends the portal session of this browser",
    "portal:language": "the portal's language switch: the portal session (and a signed-in customer's card)",
    "portal:logo": "the agency's portal logo, shown on the sign-in page: branding, no customer data",
    # What browsers ask for on their own.
    "favicon": "/favicon.ico: a redirect to the static icon, holds no agency data",
    # API routes that are not agency API views.
    "api:api_token": "exchanges a staff member's password for a token in the agency's own schema",
    "api:website_webhook": "the agency website's events: an HMAC signature with the agency's own secret",
    "checkout_stripe_webhook": "the agency's Stripe events: Stripe's signature with the agency's own webhook secret",
    "api:api-root": "the router's browsable index: lists URLs only",
    "api_schema": "the OpenAPI schema: describes the API, holds no agency data",
    "api_docs": "the API reference page (Swagger UI) over the schema",
}


def reason(url_name: str) -> str | None:
    """Why ``url_name`` (``namespace:name``) is public, or None when it must be fenced."""
    if url_name in PUBLIC_ROUTES:
        return PUBLIC_ROUTES[url_name]
    namespace = url_name.rpartition(":")[0]
    return PUBLIC_ROUTES.get(namespace + ":") if namespace else None
