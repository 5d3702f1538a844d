"""The bare anchor of bench/intake.py: one Django view, no middleware, that INSERTs the request body
into one table (``bench_intake_anchor`` in the public schema) and answers 201. Served by gunicorn as
``bench._intake_anchor:application`` with the project's settings otherwise."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import re_path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

TABLE = "bench_intake_anchor"


@csrf_exempt
def anchor(request):
    if request.method == "POST":
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO public.{TABLE} (body) VALUES (%s)", [request.body.decode()])
        return HttpResponse(b'{"ok": true}', status=201, content_type="application/json")
    return HttpResponse(b"ok")


urlpatterns = [re_path(r"", anchor)]
settings.MIDDLEWARE = []
settings.ROOT_URLCONF = __name__
settings.ALLOWED_HOSTS = ["*"]
application = WSGIHandler()
