"""Helpers for the benches: a real gunicorn app server, timed HTTP over keep-alive connections,
and percentiles. Loopback only; every loop is bounded by a count and a deadline.
"""
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers import stop  # noqa: F401  (the benches stop their servers as the tests do)

ROOT = Path(__file__).resolve().parents[1]


def django_for_wrk() -> bool:
    """Django set up and the platform migrated, for a bench whose load generator is wrk; False, with a
    message, when wrk is not installed."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt install wrk): this bench needs it as its load generator.")
        return False
    from django.core.management import call_command

    call_command("migrate_platform", verbosity=0)
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class Server:
    port: int
    log: Path
    label: str


@contextmanager
def app_server(*, workers: int = 2, worker_class: str = "sync", threads: int = 1, probe_host: str):
    """gunicorn serving caravan.wsgi on 127.0.0.1:<free port>, with this process's environment.

    Ready once ``GET /accounts/login/`` with ``Host: probe_host`` answers; stopped on exit."""
    port = free_port()
    env = os.environ.copy()
    env.update({"STATICFILES_MANIFEST": "0", "PLATFORM_PORT": str(port), "DJANGO_SETTINGS_MODULE": "caravan.settings"})
    log = Path(tempfile.mkstemp(prefix="bench-gunicorn-", suffix=".log")[1])
    command = [sys.executable, "-m", "gunicorn", "caravan.wsgi", "--bind", f"127.0.0.1:{port}",
               "--workers", str(workers), "--worker-class", worker_class, "--threads", str(threads),
               "--error-logfile", "-", "--log-level", "warning", "--graceful-timeout", "5"]
    label = f"{workers} {worker_class} workers" + (f" x {threads} threads" if worker_class == "gthread" else "")
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while _status(port, "/accounts/login/", probe_host) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield Server(port, log, label)
    finally:
        stop(process)


def _status(port: int, path: str, host: str) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", path, headers={"Host": host})
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return None


class Client:
    """One keep-alive HTTP/1.1 connection to the server, reconnecting if the server closes it."""

    def __init__(self, port: int, headers: dict):
        self.port, self.headers = port, headers
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def get(self, path: str) -> tuple[int, bytes]:
        for attempt in range(2):
            try:
                self.conn.request("GET", path, headers=self.headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        self.conn.close()


def timed_gets(client: Client, paths: list[str], *, max_seconds: float) -> tuple[list[float], dict]:
    """GET each path in turn (stopping at the deadline): latencies in ms and a count per status."""
    latencies, statuses = [], {}
    deadline = time.monotonic() + max_seconds
    for path in paths:
        if time.monotonic() > deadline:
            break
        started = time.perf_counter()
        status, _body = client.get(path)
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
    return latencies, statuses


def throughput(port: int, headers: dict, paths: list[str], *, concurrency: int, seconds: float) -> dict:
    """Requests per second with ``concurrency`` connections for ``seconds``: wrk when installed
    (it does not compete with the server for the GIL), else Python threads."""
    if shutil.which("wrk"):
        return _wrk(port, headers, paths, concurrency=concurrency, seconds=seconds)
    return _threads(port, headers, paths, concurrency=concurrency, seconds=seconds)


_WRK_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local i = 0
function setup(thread) thread:set("offset", math.random(#paths)) end
request = function()
  if i == 0 then i = offset end
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(port, headers, paths, *, concurrency, seconds) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "paths.txt").write_text("\n".join(paths) + "\n")
        (Path(tmp) / "rotate.lua").write_text(_WRK_SCRIPT)
        command = ["wrk", "-t", "2", "-c", str(concurrency), "-d", f"{int(seconds)}s", "--latency", "--timeout", "5s",
                   "-s", str(Path(tmp) / "rotate.lua")]
        for key, value in headers.items():
            command += ["-H", f"{key}: {value}"]
        command.append(f"http://127.0.0.1:{port}/")
        out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30,
                             env={**os.environ, "BENCH_PATHS": str(Path(tmp) / "paths.txt")}).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    latency = {p: float(number) * _UNITS[unit]  # in ms
               for p, number, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    shown = {p: f"{ms:.2f}ms" for p, ms in latency.items()}
    return {"tool": "wrk", "rps": rps, "requests": total, "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(0) if errors else "", "p50": shown.get("50", "?"), "p99": shown.get("99", "?"),
            "p50_ms": latency.get("50"), "p99_ms": latency.get("99")}


def _threads(port, headers, paths, *, concurrency, seconds) -> dict:
    deadline = time.monotonic() + seconds
    counts = [[0, 0] for _ in range(concurrency)]  # [ok, other]

    def work(slot: int):
        client = Client(port, headers)
        i = slot * 997
        while time.monotonic() < deadline:
            status, _body = client.get(paths[i % len(paths)])
            counts[slot][0 if status == 200 else 1] += 1
            i += 1
        client.close()

    started = time.monotonic()
    workers = [threading.Thread(target=work, args=(n,)) for n in range(concurrency)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=seconds + 30)
    elapsed = time.monotonic() - started
    total = sum(ok + other for ok, other in counts)
    return {"tool": "threads", "rps": total / elapsed, "requests": total, "non_2xx": sum(o for _ok, o in counts),
            "socket_errors": "", "p50": "?", "p99": "?"}


_WRK_POST_SCRIPT = """
local requests, offset, step = {}, 0, 1
for line in io.lines(os.getenv("BENCH_BODIES")) do
  local signature, body = line:match("^([^\\t]*)\\t(.*)$")
  requests[#requests + 1] = {signature, body}
end
local counter = 1
function setup(thread)
  thread:set("offset", counter)
  counter = counter + 1
end
local i
request = function()
  if i == nil then i = offset - 1 end
  i = i + 2  -- two wrk threads: one takes the odd events, the other the even ones
  local r = requests[(i - 1) % #requests + 1]
  local headers = {}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["X-Caravan-Signature"] = r[1]
  return wrk.format("POST", os.getenv("BENCH_PATH"), headers, r[2])
end
"""


def post_throughput(port: int, headers: dict, path: str, bodies: list[tuple[bytes, dict]], *, concurrency: int,
                    seconds: float) -> dict:
    """POST each prepared (body, extra headers) once, in turn, with ``concurrency`` connections; wrk
    when installed. Extra headers other than ``X-Caravan-Signature`` are not supported."""
    if not shutil.which("wrk"):
        return _post_threads(port, headers, path, bodies, concurrency=concurrency, seconds=seconds)
    with tempfile.TemporaryDirectory() as tmp:
        lines = [f"{extra['X-Caravan-Signature']}\t{body.decode()}" for body, extra in bodies]
        (Path(tmp) / "bodies.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (Path(tmp) / "post.lua").write_text(_WRK_POST_SCRIPT)
        command = ["wrk", "-t", "2", "-c", str(concurrency), "-d", f"{int(seconds)}s", "--latency", "--timeout", "5s",
                   "-s", str(Path(tmp) / "post.lua")]
        for key, value in headers.items():
            command += ["-H", f"{key}: {value}"]
        command.append(f"http://127.0.0.1:{port}/")
        out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                             env={**os.environ, "BENCH_BODIES": str(Path(tmp) / "bodies.txt"), "BENCH_PATH": path}).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    return {"tool": "wrk", "rps": rps, "requests": total, "non_2xx": int(bad.group(1)) if bad else 0,
            "p50": latency.get("50", "?"), "p99": latency.get("99", "?")}


def _post_threads(port, headers, path, bodies, *, concurrency, seconds) -> dict:
    deadline = time.monotonic() + seconds
    counts = [[0, 0] for _ in range(concurrency)]  # [ok, other]

    def work(slot: int):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(slot, len(bodies), concurrency):
            if time.monotonic() > deadline:
                break
            body, extra = bodies[i]
            conn.request("POST", path, body=body, headers={**headers, **extra})
            response = conn.getresponse()
            response.read()
            counts[slot][0 if response.status < 300 else 1] += 1
        conn.close()

    started = time.monotonic()
    workers = [threading.Thread(target=work, args=(slot,)) for slot in range(concurrency)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    took = time.monotonic() - started
    ok, other = sum(c[0] for c in counts), sum(c[1] for c in counts)
    return {"tool": "threads", "rps": (ok + other) / took, "requests": ok + other, "non_2xx": other, "p50": "?", "p99": "?"}
