"""Per-page additions to the Content-Security-Policy of settings.CONTENT_SECURITY_POLICY, and the
middleware that sends it (:class:`CSPMiddleware`).

The site-wide policy allows scripts, frames and connections to our own origin only. The few pages
that need more say so with django-csp's decorators, using the helpers here (docs/deploy.md,
"Security headers").
"""
from functools import wraps
from urllib.parse import urlsplit

import csp.middleware
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.decorators import csp_update
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

STRIPE_JS = "https://js.stripe.com"
STRIPE_HOOKS = "https://hooks.stripe.com"  # 3-D Secure frames
STRIPE_API = "https://api.stripe.com"


def stripe_sources() -> dict:
    """What Stripe.js needs on the card form: its script, its frames and its API; localstripe's
    origin instead when STRIPE_API_BASE points at it (make run, the tests)."""
    base = settings.STRIPE_API_BASE
    if base:
        parts = urlsplit(base)
        origin = f"{parts.scheme}://{parts.netloc}"
        return {"script-src": [origin], "frame-src": [origin], "connect-src": [origin]}
    return {"script-src": [STRIPE_JS], "frame-src": [STRIPE_JS, STRIPE_HOOKS], "connect-src": [STRIPE_API]}


def allow_stripe(view):
    """View decorator: this page's policy also allows Stripe.js (read when the view runs, so a test
    pointing STRIPE_API_BASE at localstripe is honoured)."""

    @wraps(view)  # keeps the view's attributes (view_class, csrf_exempt, …)
    def wrapped(request, *args, **kwargs):
        return csp_update(stripe_sources())(view)(request, *args, **kwargs)

    return wrapped


class CSPMiddleware(csp.middleware.CSPMiddleware):
    """django-csp's middleware, building the site-wide policy once instead of on every response.

    django-csp builds both headers from the settings on every response (``dataclasses.asdict`` and
    ``build_policy`` twice: 7 % of a small API call's Python time, issue 22). A response that used no
    nonce and no per-view change (``csp_update``/``csp_replace``/``csp_exempt``, ``allow_stripe``)
    gets exactly the same text each time, so that text is kept per process (dropped when a test changes
    the settings); every other response takes django-csp's own path."""

    _site_wide: dict[bool, str] = {}

    def process_response(self, request, response):
        if (getattr(request, "_csp_nonce", None) is not None or settings.DEBUG
                or any(hasattr(response, name) for name in _PER_RESPONSE)):
            return super().process_response(request, response)
        for report_only, header, setting in ((False, HEADER, "CONTENT_SECURITY_POLICY"),
                                             (True, HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY")):
            value = self._site_wide.get(report_only)
            if value is None:
                value = self._site_wide[report_only] = build_policy(report_only=report_only)
            prefixes = tuple((getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ())
            if value and header not in response and not request.path_info.startswith(prefixes):
                response[header] = value
        # As django-csp: reading request.csp_nonce after the header is written is an error.
        request.csp_nonce = csp.middleware.CheckableLazyObject(self._csp_nonce_post_response)
        return response


# What a view or decorator sets on a response to change or skip its policy (django-csp 4).
_PER_RESPONSE = ("_csp_config", "_csp_update", "_csp_replace", "_csp_exempt",
                 "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro", "_csp_exempt_ro")


@receiver(setting_changed)
def _forget_site_wide_policy(*, setting, **kwargs):
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        CSPMiddleware._site_wide.clear()
