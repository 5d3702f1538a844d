"""A shorter middleware chain for API requests that carry a token or a signature (issue 22, the cost of a request).

A request to ``/api/`` with ``Authorization: Token …`` (or ``Bearer …``) is authenticated by its token
alone (``accounts.authentication``), a website's event by its ``X-Caravan-Signature`` alone
(``crm.pipeline.api.WebsiteWebhookView``): neither has a session, a CSRF cookie, flash messages or a
second step to pass (the token was handed out after it), neither is an htmx or portal request or
asks for a static file. The middleware that serves only browsers cost a quarter of the Python time of a
small API call (the screen pop). :class:`TokenAPIRouter`, first in ``MIDDLEWARE``, sends such a
request down a second chain built from ``MIDDLEWARE`` itself without the classes named in
``settings.BROWSER_ONLY_MIDDLEWARE``: the fences (host → agency, read-only agencies, NUL bytes,
lost-connection retry, request id, logs and metrics, security headers) are in both chains by
construction, and a middleware added later is in both unless it is named there too.

Every other request (pages, the portal, sign-in, an API call with a session cookie, a token on a
path outside ``/api/``) takes the whole chain. ``tests/test_token_api_chain.py`` checks both.
"""
from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.utils.module_loading import import_string

_KEYWORDS = ("token ", "bearer ")
ROUTER = "caravan.handlers.TokenAPIRouter"


def is_token_api_request(request) -> bool:
    """An ``/api/`` request whose Authorization header names a token, or that carries a website's signature
    (whether either is valid is the chain's to say)."""
    if not request.path_info.startswith("/api/"):
        return False
    if "HTTP_X_CARAVAN_SIGNATURE" in request.META:
        return True
    header = request.META.get("HTTP_AUTHORIZATION", "")
    return header[:7].lower().startswith(_KEYWORDS)


def token_api_middleware() -> list[str]:
    """``MIDDLEWARE`` in its order, without the router itself and the browser-only classes."""
    skipped = set(settings.BROWSER_ONLY_MIDDLEWARE)
    unknown = skipped - set(settings.MIDDLEWARE)
    if unknown:  # a renamed or removed class: say so rather than silently skip nothing
        raise ValueError(f"BROWSER_ONLY_MIDDLEWARE names classes not in MIDDLEWARE: {sorted(unknown)}")
    return [path for path in settings.MIDDLEWARE if path != ROUTER and path not in skipped]


class _TokenAPIHandler(BaseHandler):
    """The middleware of :func:`token_api_middleware` around Django's own view handling (URL resolving,
    view and exception middleware, the response's rendering): ``BaseHandler.load_middleware`` with that
    list instead of ``settings.MIDDLEWARE``."""

    def load_middleware(self, is_async=False):
        # BaseHandler reads settings.MIDDLEWARE; give it the shorter list for the time of the load.
        # Handlers are built once, when the WSGI application (or a test client) loads its middleware.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = token_api_middleware()
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


class TokenAPIRouter:
    """First in ``MIDDLEWARE``: a token API request goes down the shorter chain, everything else on."""

    def __init__(self, get_response):
        self.get_response = get_response
        handler = _TokenAPIHandler()
        handler.load_middleware()
        self.token_api_chain = handler._middleware_chain

    def __call__(self, request):
        if is_token_api_request(request):
            return self.token_api_chain(request)
        return self.get_response(request)
