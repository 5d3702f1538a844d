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

    The cache's key function prefixes the active schema, so agencies never share a count. One round
    trip (every limited API request makes one): the window's counter created with its expiry if new,
    and incremented, in one MULTI/EXEC, so it cannot expire between the two and live on without one."""
    from django_redis import get_redis_connection

    start = int(time.time()) // window * window
    slot = cache.make_and_validate_key(f"rate:{key}:{start}")
    pipe = get_redis_connection("default").pipeline(transaction=True)
    pipe.set(slot, 0, ex=window + 1, nx=True)
    pipe.incr(slot)
    count = pipe.execute()[1]
    if count <= limit:
        return 0
    return max(1, start + window - int(time.time()))
