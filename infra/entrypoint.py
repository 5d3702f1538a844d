"""The production image's entry point, and the one place Caravan's process commands are written.

    python -m infra.entrypoint web         # gunicorn serving caravan.wsgi
    python -m infra.entrypoint worker      # Celery worker (the queue CELERY_QUEUE names)
    python -m infra.entrypoint scheduler   # Celery beat; run exactly one
    python -m infra.entrypoint migrate     # manage.py migrate_platform (public, template, agencies)
    python -m infra.entrypoint manage …    # any other manage.py command (createsuperuser, shell, …)
    python -m infra.entrypoint probe /healthz /readyz   # health check of the local web process

Arguments after the subcommand are appended to the command (``migrate --verbosity 0``). The
process *replaces* this one (``exec``), so gunicorn or Celery receives the container's SIGTERM
itself and shuts down gracefully.

``probe`` asks the web process in the same container (127.0.0.1:PORT, with the platform domain as
Host) for each path and exits 0 only if every one answers 200: compose's health check uses it.

The container image runs ``python -m infra.entrypoint <subcommand>`` (infra/docker/Dockerfile),
compose and the Helm chart pass only the subcommand, and ``make run`` (infra/devenv.py) builds its
web, worker and scheduler processes and its migration from :func:`command` too, so the checkout
and the image run the same commands. ``tests/test_deploy.py`` starts them from the checkout.

Variables read here (besides the application's own, docs/configuration.md):

    BIND (0.0.0.0), PORT (8000)   address and port gunicorn listens on
    WEB_WORKERS (3)               gunicorn worker processes
    WEB_TIMEOUT (60)              seconds before gunicorn restarts a silent worker
    WEB_GRACEFUL_TIMEOUT (30)     seconds a worker gets to finish its requests on SIGTERM
    WEB_ACCESS_LOG (off)          1: gunicorn's own access log on stdout too. Off by default: its lines
                                  carry the path and query (a caller's number, a searched name), which
                                  our log lines never do; ``caravan.request`` logs one line per request
    WORKER_CONCURRENCY (2)        Celery worker processes
    CELERY_BEAT_SCHEDULE          beat's schedule file (default: <temp dir>/caravan-celerybeat-schedule)
    LOG_LEVEL (INFO)              also the Celery worker's and beat's log level
    PROMETHEUS_MULTIPROC_DIR      web and worker: prometheus_client's multiprocess directory; when
                                  unset, an empty one under the temp dir for each start
"""
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SUBCOMMANDS = ("web", "worker", "scheduler", "migrate", "manage", "probe")

# Every variable this module reads, with its default (tests/test_deploy.py and the docs use it).
DEFAULTS = {
    "BIND": "0.0.0.0",
    "PORT": "8000",
    "WEB_WORKERS": "3",
    "WEB_TIMEOUT": "60",
    "WEB_GRACEFUL_TIMEOUT": "30",
    "WEB_ACCESS_LOG": "0",
    "WORKER_CONCURRENCY": "2",
    "CELERY_BEAT_SCHEDULE": str(Path(tempfile.gettempdir()) / "caravan-celerybeat-schedule"),
    "LOG_LEVEL": "INFO",
}


def command(name: str, env: Mapping[str, str] | None = None, python: str = sys.executable) -> list[str]:
    """The argv of process ``name`` (one of SUBCOMMANDS) under environment ``env``."""
    env = os.environ if env is None else env

    def get(key: str) -> str:
        return env.get(key) or DEFAULTS[key]

    if name == "web":
        # gunicorn's access log only when asked (WEB_ACCESS_LOG=1): it writes the path with its query,
        # personal data our own access line (caravan.request: route, status, time) leaves out.
        access_log = ["--access-logfile", "-"] if get("WEB_ACCESS_LOG") in ("1", "true", "yes") else []
        return [python, "-m", "gunicorn", "caravan.wsgi", "--bind", f"{get('BIND')}:{get('PORT')}",
                "--workers", get("WEB_WORKERS"), "--timeout", get("WEB_TIMEOUT"),
                "--graceful-timeout", get("WEB_GRACEFUL_TIMEOUT"), *access_log, "--error-logfile", "-",
                # The app (caravan.wsgi, both URL maps) is loaded once in the master and the workers are
                # forked from it: they share its memory instead of each importing everything again.
                "--preload"]
    if name == "worker":
        return [python, "-m", "celery", "-A", "caravan", "worker", "--loglevel", get("LOG_LEVEL"),
                "--concurrency", get("WORKER_CONCURRENCY")]
    if name == "scheduler":
        return [python, "-m", "celery", "-A", "caravan", "beat", "--loglevel", get("LOG_LEVEL"),
                "--schedule", get("CELERY_BEAT_SCHEDULE")]
    if name == "migrate":
        return [python, str(ROOT / "manage.py"), "migrate_platform"]
    if name == "manage":
        return [python, str(ROOT / "manage.py")]
    if name == "probe":
        return [python, "-m", "infra.entrypoint", "probe"]
    raise ValueError(f"unknown process {name!r}; one of {', '.join(SUBCOMMANDS)}")


def environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` with what every process needs: the settings module, the checkout and platform/ on the path."""
    env = dict(os.environ if env is None else env)
    env.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    paths = [str(ROOT), str(ROOT / "platform")]
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                                 if p and p not in paths])
    return env


def probe(paths: list[str], env: Mapping[str, str] | None = None, timeout: float = 5.0) -> int:
    """0 if GET http://127.0.0.1:PORT<path> answers 200 for every path (Host: PLATFORM_DOMAIN), else 1."""
    import urllib.error
    import urllib.request

    env = os.environ if env is None else env
    port = env.get("PORT") or DEFAULTS["PORT"]
    host = env.get("PLATFORM_DOMAIN") or "localhost"
    for path in paths or ["/healthz"]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = response.status
        except urllib.error.HTTPError as e:
            status = e.code
        except OSError as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 1
        if status != 200:
            print(f"{path}: HTTP {status}", file=sys.stderr)
            return 1
    return 0


def metrics_directory(name: str, env: dict[str, str]) -> None:
    """gunicorn's workers and Celery's prefork pool are several processes: their metrics meet in
    prometheus_client's multiprocess directory, which must be empty when the process kind starts
    (caravan.metrics). Unless one is given, web and worker get ``<temp>/caravan-prometheus-<name>-<pid>``
    (the pid survives the exec); directories of processes that are gone are removed first."""
    if name not in ("web", "worker") or env.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    import shutil

    base = Path(tempfile.gettempdir())
    for stale in base.glob("caravan-prometheus-*-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(stale, ignore_errors=True)
    directory = base / f"caravan-prometheus-{name}-{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)  # a reused pid's leftovers
    directory.mkdir(mode=0o700)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in SUBCOMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "probe":
        return probe(argv[1:])
    env = environment()
    metrics_directory(argv[0], env)
    argv_out = command(argv[0], env) + argv[1:]
    os.chdir(ROOT)
    os.execve(argv_out[0], argv_out, env)  # does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
