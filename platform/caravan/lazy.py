"""Heavy libraries that a web worker rarely needs, imported at their first use (issue 22).

Each web worker and Celery child loads every module the URL maps reach; a library imported at the
top of a service module is paid for by every process, whether or not it ever calls it.
``tests/test_request_cost.py`` checks that a web process starts without them."""
from importlib import import_module

from django.utils.functional import SimpleLazyObject


def lazy_module(name: str):
    """Module ``name``, imported when one of its attributes is first read (``stripe.StripeClient``,
    ``except stripe.CardError``). Annotations naming it must be strings, or they import it at once."""
    return SimpleLazyObject(lambda: import_module(name))
