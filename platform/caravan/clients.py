"""Who is asking: the client's address as Caravan's own proxies saw it, and a small counter for
rate limits kept in the cache.

Every per-address limit (the enquiry form, sign-in lockout through django-axes, the password
reset, the invitation page, DRF's throttles through ``NUM_PROXIES``) keys on
:func:`client_address`, so an ``X-Forwarded-For`` that a client invents never changes the count.
"""
import time

from django.conf import settings
from django.core.cache import cache


def client_address(meta: dict, proxies: int) -> str:
    """The visitor's address: REMOTE_ADDR, or behind ``proxies`` reverse proxies the entry of
    X-Forwarded-For that the outermost of ours appended (what a client sends itself is ignored)."""
    if proxies > 0:
        hops = [h.strip() for h in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return meta.get("REMOTE_ADDR", "")


def request_address(request) -> str:
    """:func:`client_address` of a request with ``settings.PROXY_COUNT`` (django-axes'
    ``AXES_CLIENT_IP_CALLABLE``)."""
    return client_address(request.META, settings.PROXY_COUNT)


def rate_hit(key: str, *, limit: int, window: int) -> int:
    """Count one event under ``key`` in a fixed window of ``window`` seconds. Returns 0 while the
    count is within ``limit``, else the seconds until the window ends (for ``Retry-After``).

    The cache's key function prefixes the active schema, so agencies never share a count."""
    start = int(time.time()) // window * window
    slot = f"rate:{key}:{start}"
    cache.add(slot, 0, window + 1)
    try:
        count = cache.incr(slot)
    except ValueError:  # expired between add and incr
        cache.set(slot, 1, window + 1)
        count = 1
    if count <= limit:
        return 0
    return max(1, start + window - int(time.time()))
