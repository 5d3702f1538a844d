"""The bare anchor of bench/request_cost.py: one Django view, no middleware, no database, answering a
small JSON body. Served by gunicorn as ``bench._bare_json:application`` with the project's settings
otherwise (the same apps are loaded by ``django.setup()``; only MIDDLEWARE and the URL map differ)."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import re_path  # noqa: E402


def bare(request):
    return JsonResponse({"number": request.GET.get("phone", ""), "customer": None, "companies": [],
                         "recent_trips": [], "open_complaints": [], "last_contacts": []})


urlpatterns = [re_path(r"", bare)]
settings.MIDDLEWARE = []
settings.ROOT_URLCONF = __name__
settings.ALLOWED_HOSTS = ["*"]
application = WSGIHandler()
