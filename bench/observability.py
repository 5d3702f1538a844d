"""What the metrics and logging middleware costs per request.

    .venv/bin/python -m infra.devenv bench observability

One bare Django view (``HttpResponse("ok")``) behind Django's own WSGI handler, called in-process:

- anchor: no middleware at all;
- ``caravan.metrics.ObservabilityMiddleware`` (request id, the log context, route/agency/status
  metrics) with its access line off (``caravan.request`` at WARNING), in text and in JSON (one line
  per request written to /dev/null through the real filter and formatter).

The view marks the request as coming from an agency, so the agency label is taken too. Sizes: the
requests spread over 10 and over 1,000 agencies (METRICS_TOP_AGENCIES=20: the second size fills
the label table and sends most to ``other``). BENCH_REQUESTS (default 3000) per run, BENCH_RUNS
(default 5) runs; prints the median and range of the per-request time and the ratio to the anchor.
Needs Redis (the agency label table) but not the database.
"""
import io
import logging
import os
import statistics
import sys
import time
import types
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "3000"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SIZES = (10, 1000)

_agencies: list = []


def view(request):
    from django.http import HttpResponse

    request.tenant = _agencies[hash(request.META["QUERY_STRING"]) % len(_agencies)]
    return HttpResponse("ok")


def _urlconf():
    from django.urls import path

    module = types.ModuleType("bench_observability_urls")
    module.urlpatterns = [path("ping/", view, name="ping")]
    sys.modules[module.__name__] = module
    return module.__name__


def _handler(middleware: list[str]):
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    with override_settings(MIDDLEWARE=middleware):
        return WSGIHandler()


def _environ(i: int) -> dict:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": "/ping/", "QUERY_STRING": f"a={i}", "SERVER_NAME": "bench.localhost",
            "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(), "HTTP_HOST": "bench.localhost"}


def _run(handler) -> float:
    """Seconds per request, over REQUESTS requests."""
    def start_response(status, headers):
        return None

    environs = [_environ(i) for i in range(REQUESTS)]
    started = time.perf_counter()
    for environ in environs:
        for _chunk in handler(environ, start_response):
            pass
    return (time.perf_counter() - started) / REQUESTS


def _log_to_devnull(fmt: str):
    from caravan.logs import ContextFilter, JsonFormatter

    handler = logging.StreamHandler(open(os.devnull, "w"))
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s [%(schema_name)s] %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    # "off": the access line switched off by its logger's level (metrics and request id still on).
    logging.getLogger("caravan.request").setLevel(logging.WARNING if fmt == "off" else logging.NOTSET)


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.conf import settings

    from caravan import metrics

    settings.ROOT_URLCONF = _urlconf()
    settings.ALLOWED_HOSTS = ["*"]
    key = f"bench:metrics:agency-labels:{uuid.uuid4().hex}"
    metrics._agency_labels = metrics.AgencyLabels(20, key)
    bare = _handler([])
    observed = _handler(["caravan.metrics.ObservabilityMiddleware"])
    load = os.getloadavg()
    print(f"Observability middleware overhead: {REQUESTS} requests x {RUNS} runs per case, bare view, in-process "
          f"WSGI; {os.cpu_count()} CPUs, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"multiprocess mode {'on' if metrics.multiprocess_dir() else 'off'}", flush=True)
    try:
        for size in SIZES:
            _agencies[:] = [types.SimpleNamespace(slug=f"bench-{i}", schema_name=f"bench_{i}") for i in range(size)]
            cases = {"anchor: no middleware": (bare, "text"), "observability, no access line": (observed, "off"),
                     "observability, text logs": (observed, "text"), "observability, JSON logs": (observed, "json")}
            _log_to_devnull("text")
            _run(observed)  # warm up: label table, metric children
            results = {}
            for name, (handler, fmt) in cases.items():
                _log_to_devnull(fmt)
                results[name] = [_run(handler) for _ in range(RUNS)]
            anchor = statistics.median(results["anchor: no middleware"])
            print(f"  requests spread over {size} agencies (label table: {len(metrics._agency_labels._labelled)} "
                  f"slugs + other)")
            for name, timings in results.items():
                median = statistics.median(timings)
                print(f"    {name:31s} median {median * 1e6:7.1f} µs   range {min(timings) * 1e6:7.1f}–"
                      f"{max(timings) * 1e6:7.1f} µs   x{median / anchor:5.2f}   +{(median - anchor) * 1e6:6.1f} µs")
    finally:
        metrics._agency_labels.client().delete(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
