"""The Celery app plus one empty agency task, for bench/fanout.py's real worker (``celery -A bench._fanout_worker``)."""
import time

import redis
from django.conf import settings

from caravan.celery import app  # noqa: F401  (the worker's app: same configuration as production)
from caravan.tenancy.tasks import AgencyTask


@app.task(base=AgencyTask, name="bench.noop", ignore_result=True)
def noop(key: str) -> None:
    """Does nothing but stamp when it ran (one Redis round trip), so the bench times the drain alone."""
    now = time.time()
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    pipe = client.pipeline()
    pipe.set(f"{key}:first", now, nx=True)
    pipe.set(f"{key}:last", now)
    pipe.incr(f"{key}:count")
    pipe.execute()
