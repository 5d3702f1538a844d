"""Per-page additions to the Content-Security-Policy of settings.CONTENT_SECURITY_POLICY.

The site-wide policy allows scripts, frames and connections to our own origin only. The few pages
that need more say so with django-csp's decorators, using the helpers here (docs/deploy.md,
"Security headers").
"""
from functools import wraps
from urllib.parse import urlsplit

from csp.decorators import csp_update
from django.conf import settings

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
