"""The bare anchor of bench/request_cost.py's worker memory: a Celery app without Django, one task,
the same broker. Run as ``celery -A bench._bare_celery worker``."""
import os

from celery import Celery

app = Celery("bare", broker=os.environ["REDIS_URL"], backend=os.environ["REDIS_URL"])
app.conf.task_default_queue = os.environ.get("CELERY_QUEUE", "celery")


@app.task(name="bare.ping")
def ping():
    return "pong"
