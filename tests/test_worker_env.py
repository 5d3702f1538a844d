"""make test's two processes do not share Redis, media or mail (tests/worker_env.py)."""
from tests.worker_env import isolate, redis_url_for, worker_number


def test_redis_url_moves_to_the_next_database_and_keeps_the_rest():
    assert redis_url_for("redis://127.0.0.1:6379/0", 1) == "redis://127.0.0.1:6379/1"
    assert redis_url_for("redis://:secret@cache.internal:6380/15", 1) == "redis://:secret@cache.internal:6380/0"
    assert redis_url_for("redis://127.0.0.1:6379", 2) == "redis://127.0.0.1:6379/2"
    assert redis_url_for("rediss://h:6379/3?ssl_cert_reqs=none", 1) == "rediss://h:6379/4?ssl_cert_reqs=none"


def test_second_worker_gets_its_own_redis_media_and_mail_the_first_keeps_them():
    base = {"REDIS_URL": "redis://127.0.0.1:6379/4", "MEDIA_ROOT": "/srv/var/media", "EMAIL_FILE_PATH": "/srv/var/mail/"}
    first = {**base, "PYTEST_XDIST_WORKER": "gw0"}
    isolate(first)
    assert {k: first[k] for k in base} == base
    second = {**base, "PYTEST_XDIST_WORKER": "gw1"}
    isolate(second)
    assert second["REDIS_URL"] == "redis://127.0.0.1:6379/5"
    assert second["MEDIA_ROOT"] == "/srv/var/media-gw1" and second["EMAIL_FILE_PATH"] == "/srv/var/mail-gw1"
    alone = dict(base)
    isolate(alone)
    assert alone == base and worker_number(alone) == 0
