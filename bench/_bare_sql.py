"""The second anchor of bench/request_cost.py: a screen pop's database work and nothing else.

One Django view without middleware (as bench/_bare_json.py: the project's settings and apps otherwise) that
does what a screen pop cannot do without, on one psycopg connection per worker process (autocommit, every
statement prepared by psycopg): the agency's schema from the Host header (a dict read at start-up: no Redis),
``SET search_path`` when it changes, the API token's statement (``accounts.tokens``), the screen pop's
statement (``crm.customers.selectors``, with the parts the other apps register), the access entry's INSERT
(``crm.privacy.services``), and the answer as JSON straight from the row. No authentication or permission
classes, no rate limit, no model instances, no log line, metrics or security headers, and nothing checked
beyond the token's existence: it is a measuring stick, never served.

What lies between it and the bare JSON view is the work itself (three statements, one a write, and the
number's parsing); between the screen pop and it, Django's and DRF's request handling and every fence.
"""
import hashlib
import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.db import connection as django_connection  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.urls import re_path  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.tokens import _lookup_sql  # noqa: E402
from crm.customers import screen_pop as screen_pop_parts  # noqa: E402
from crm.customers.models import Customer  # noqa: E402
from crm.customers.normalize import phone_e164  # noqa: E402
from crm.customers.selectors import _screen_pop_sql  # noqa: E402
from crm.privacy.services import _insert_sql  # noqa: E402
from tenants.models import Domain  # noqa: E402

# host → (schema, default region), read once (gunicorn --preload: in the master, before the fork), and again
# for a host made after the start
def _agencies() -> dict:
    return {d.domain: (d.tenant.schema_name, d.tenant.default_region)
            for d in Domain.objects.select_related("tenant").exclude(tenant__schema_name="public")}


AGENCIES = _agencies()
TOKEN_SQL = _lookup_sql()[0]
POP_SQL = _screen_pop_sql(screen_pop_parts.parts())
ACCESS_SQL = _insert_sql()
django_connection.close()  # a forked worker must not share the master's socket

_state = {"pid": None, "conn": None, "schema": None}


def _connection(schema: str):
    if _state["pid"] != os.getpid():
        _state.update(pid=os.getpid(), conn=psycopg.connect(os.environ["DATABASE_URL"], autocommit=True), schema=None)
    conn = _state["conn"]
    if _state["schema"] != schema:
        conn.execute(f'SET search_path = "{schema}", public')
        _state["schema"] = schema
    return conn


def pop(request):
    phone = request.GET.get("phone")
    if phone is None:
        return HttpResponse("ok")  # the bench's start-up probe
    host = request.get_host().split(":")[0]
    if host not in AGENCIES:  # an agency the bench made after the server started (a fresh database)
        AGENCIES.update(_agencies())
        django_connection.close()
    agency = AGENCIES.get(host)
    if agency is None:
        return JsonResponse({"error": "no agency"}, status=404)
    schema, region = agency
    conn = _connection(schema)
    secret = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")[2]
    token = conn.execute(TOKEN_SQL, [hashlib.sha256(secret.encode()).hexdigest()], prepare=True).fetchone()
    if token is None:
        return JsonResponse({"error": "no token"}, status=401)
    number = phone_e164(phone, region)
    row = conn.execute(POP_SQL, [number], prepare=True).fetchone()
    if row is None:
        return JsonResponse({"number": number, "customer": None})
    conn.execute(ACCESS_SQL, [timezone.now(), token[_USER_AT], row[0], "card_view", "api", "screen pop", "", None],
                 prepare=True)
    return HttpResponse(json.dumps({"number": number, "customer": {"id": row[0], "name": row[_NAME_AT]},
                                    "row": row[_NAME_AT + 1:]}, default=str, ensure_ascii=False),
                        content_type="application/json")


# Where the token's user and the customer's name are in their rows (both statements select the model's fields in order).
_USER_AT = _lookup_sql()[1].index("user_id")
_NAME_AT = [f.attname for f in Customer._meta.concrete_fields].index("name")

urlpatterns = [re_path(r"", pop)]
settings.MIDDLEWARE = []
settings.ROOT_URLCONF = __name__
settings.ALLOWED_HOSTS = ["*"]
application = WSGIHandler()
