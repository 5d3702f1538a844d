"""Uploads bounded by what they unpack to, parsed only in a worker (issue 18): what it costs and what it saves.

    .venv/bin/python -m infra.devenv bench upload_bounds

In a fresh agency ``bench-uploads``:

1. Normal files, 10,000 and 100,000 rows, as CSV and as .xlsx. **Web side**: the service calls the
   import page and API make per request (``imports.job_create``: store, check an .xlsx's zip
   directory, queue; ``imports.check_request``: check the mapping, queue), timed in this process.
   **Worker side**: ``crm.check_import`` run in a fresh process, as a Celery worker child would
   (the file read — headers and preview — then the dry run), its time and peak memory (VmHWM).
2. The bomb: a ~1 MB .xlsx whose one cell unpacks to 1,000 MB. Refused by the web side (zip
   directory only): time and this process's memory growth. The same bomb with its zip directory
   lying about the size: accepted by the web side, refused by the worker while inflating with a
   counter. And the bomb with the zip bounds loosened (UPLOAD_MAX_RATIO=100000), so it reaches the
   parser: stopped by the worker's PARSE_MAX_MEMORY_MB. Time to refusal and the parsing process's peak.

Each figure: median and range of BENCH_RUNS runs (default 3); BENCH_UPLOAD_ROWS (default
10000,100000) sets the sizes, BENCH_BOMBS=0 leaves the bombs out. Messages go to a queue of their own
(``bench-upload-bounds``), emptied at the end, so no running worker picks them up.
"""
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

os.environ["CELERY_QUEUE"] = "bench-upload-bounds"
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SIZES = [int(n) for n in os.environ.get("BENCH_UPLOAD_ROWS", "10000,100000").split(",")]
SLUG = "bench-uploads"
MB = 1024 * 1024
BOMB_MB = 1000
LOOSE = {"UPLOAD_MAX_UNPACKED_BYTES": str(4000 * MB), "UPLOAD_MAX_RATIO": "100000"}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        return worker(int(sys.argv[2]), sys.argv[3])
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.core.management import call_command

    call_command("migrate_platform", verbosity=0)
    load = os.getloadavg()
    bench = Bench()
    try:
        bench.normal_files()
        if os.environ.get("BENCH_BOMBS", "1") != "0":
            bench.bombs()
    finally:
        bench.close()
    bench.summary(load)
    return 0


def worker(job_id: int, token: str) -> int:
    """In a fresh process, as a worker child: run crm.check_import once; print time, peak memory, outcome."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django_tenants.utils import tenant_context

    from caravan import unpack
    from crm.customers.tasks import check_import
    from tenants.models import Agency

    with tenant_context(Agency.objects.get(slug=SLUG)):
        before = unpack.peak_rss()
        started = time.perf_counter()
        outcome = check_import.apply(args=[job_id, token]).get()
        seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak": unpack.peak_rss(), "before": before, "status": outcome["status"]}))
    return 0


def spread(values: list[float], unit: str, scale: float = 1.0) -> str:
    values = [v / scale for v in values]
    fmt = (lambda v: f"{v:,.0f}") if max(values) >= 100 else (lambda v: f"{v:.3f}" if max(values) < 1 else f"{v:.2f}")
    return f"{fmt(statistics.median(values))} {unit} (range {fmt(min(values))}–{fmt(max(values))}, n={len(values)})"


class Bench:
    def __init__(self):
        from django.contrib.auth import get_user_model

        from tenants.models import Agency
        from tenants.services import agency_delete, agency_onboard

        if old := Agency.objects.filter(slug=SLUG).first():
            agency_delete(agency=old, confirm_slug=SLUG, actor="bench")
        self.agency = agency_onboard(name="Bench uploads", slug=SLUG, plan="enterprise",
                                     admin_email=f"admin@{SLUG}.test", actor="bench").agency
        from django_tenants.utils import tenant_context

        with tenant_context(self.agency):
            self.admin = get_user_model().objects.get(email=f"admin@{SLUG}.test")
        self.tmp = tempfile.TemporaryDirectory()
        self.lines: list[str] = []

    def close(self) -> None:
        import redis
        from django.conf import settings

        from tenants.models import Agency
        from tenants.services import agency_delete

        redis.Redis.from_url(settings.REDIS_URL).delete(os.environ["CELERY_QUEUE"])
        agency_delete(agency=Agency.objects.get(slug=SLUG), confirm_slug=SLUG, actor="bench")
        self.tmp.cleanup()

    # --- files ---------------------------------------------------------------------------------------

    def rows(self, count: int):
        yield ["姓名", "手机", "邮箱", "城市", "备注"]
        for i in range(count):
            yield [f"客户{i}", f"139{i:08d}", f"c{i}@example.com", ["北京", "上海", "广州"][i % 3], f"第{i}位"]

    def csv_file(self, count: int) -> Path:
        path = Path(self.tmp.name) / f"customers-{count}.csv"
        with open(path, "w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows(self.rows(count))
        return path

    def xlsx_file(self, count: int) -> Path:
        from openpyxl import Workbook

        path = Path(self.tmp.name) / f"customers-{count}.xlsx"
        book = Workbook(write_only=True)
        sheet = book.create_sheet()
        for row in self.rows(count):
            sheet.append(row)
        book.save(path)
        return path

    def bomb_file(self, lying: bool = False) -> Path:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.bombs import lying_copy, workbook_with_cell

        path = Path(self.tmp.name) / "bomb.xlsx"
        if not path.exists():
            workbook_with_cell(path, BOMB_MB)
        return lying_copy(path, Path(self.tmp.name) / "liar.xlsx") if lying else path

    # --- measuring -----------------------------------------------------------------------------------

    def upload(self, path: Path):
        from django.core.files import File
        from django_tenants.utils import tenant_context

        from crm.customers import imports

        with tenant_context(self.agency), open(path, "rb") as f:
            started = time.perf_counter()
            job, _headers = imports.job_create(actor=self.admin, upload=File(f, name=path.name))
            seconds = time.perf_counter() - started
            token = imports.state(job)["task"]["token"]
        return job, token, seconds

    def run_worker(self, job_id: int, token: str, env: dict | None = None) -> dict:
        out = subprocess.run([sys.executable, __file__, "worker", str(job_id), token], capture_output=True, text=True,
                             env={**os.environ, **(env or {})}, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    def normal_files(self) -> None:
        from django_tenants.utils import tenant_context

        from crm.customers import imports

        for count in SIZES:
            for kind, make in (("CSV", self.csv_file), ("xlsx", self.xlsx_file)):
                path = make(count)
                web_upload, web_check, read, check, peaks = [], [], [], [], []
                for _run in range(RUNS):
                    job, token, seconds = self.upload(path)
                    web_upload.append(seconds)
                    result = self.run_worker(job.pk, token)
                    assert result["status"] == "done", result
                    read.append(result["seconds"])
                    with tenant_context(self.agency):
                        job.refresh_from_db()
                        started = time.perf_counter()
                        imports.check_request(job, mapping=job.mapping)
                        web_check.append(time.perf_counter() - started)
                        token = imports.state(job)["task"]["token"]
                    result = self.run_worker(job.pk, token)
                    assert result["status"] == "done", result
                    check.append(result["seconds"])
                    peaks.append(result["peak"])
                size = path.stat().st_size
                unpacked = size
                if kind == "xlsx":
                    with zipfile.ZipFile(path) as archive:
                        unpacked = sum(i.file_size for i in archive.infolist())
                self.lines += [
                    f"{count:,} rows, {kind} ({size / MB:.1f} MB, unpacks to {unpacked / MB:.1f} MB):",
                    f"  web: upload (store, zip directory, queue)  {spread(web_upload, 'ms', 1e-3)}",
                    f"  web: ask for the check (queue)             {spread(web_check, 'ms', 1e-3)}",
                    f"  worker: read headers and preview           {spread(read, 's')}",
                    f"  worker: dry run of every row               {spread(check, 's')}, "
                    f"{count / statistics.median(check):,.0f} rows/s",
                    f"  worker process peak memory (VmHWM)         {spread(peaks, 'MB', MB)}",
                ]
                print("\n".join(self.lines[-6:]), flush=True)

    def bombs(self) -> None:
        from django.core.exceptions import ValidationError
        from django.test import override_settings

        from caravan import unpack

        bomb = self.bomb_file()
        refused, grown = [], []
        for _run in range(RUNS):
            before = unpack.peak_rss()
            started = time.perf_counter()
            try:
                self.upload(bomb)
            except ValidationError as exc:
                refused.append(time.perf_counter() - started)
                grown.append(unpack.peak_rss() - before)
                message = exc.messages[0]
            else:
                raise AssertionError("the bomb was accepted")
        self.lines += [f"Bomb: {bomb.stat().st_size / MB:.2f} MB .xlsx, one cell of {BOMB_MB:,} MB:",
                       f"  web: refused from the zip directory in     {spread(refused, 'ms', 1e-3)}",
                       f"  web process peak memory growth             {spread(grown, 'MB', MB)}",
                       f"  message: {message}"]
        liar = self.bomb_file(lying=True)
        times, peaks = [], []
        for _run in range(RUNS):
            job, token, _seconds = self.upload(liar)
            result = self.run_worker(job.pk, token)
            assert result["status"] == "refused", result
            times.append(result["seconds"])
            peaks.append(result["peak"])
        self.lines += ["Bomb with a lying zip directory (accepted by the web side):",
                       f"  worker: refused while inflating in         {spread(times, 's')}",
                       f"  worker process peak memory (VmHWM)         {spread(peaks, 'MB', MB)}"]
        times, peaks = [], []
        for _run in range(RUNS):
            with override_settings(UPLOAD_MAX_UNPACKED_BYTES=int(LOOSE["UPLOAD_MAX_UNPACKED_BYTES"]),
                                   UPLOAD_MAX_RATIO=int(LOOSE["UPLOAD_MAX_RATIO"])):
                job, token, _seconds = self.upload(bomb)
            result = self.run_worker(job.pk, token, env=LOOSE)
            assert result["status"] == "memory", result
            times.append(result["seconds"])
            peaks.append(result["peak"])
        from django.conf import settings

        self.lines += [f"Bomb with the zip bounds loosened (reaches the parser; PARSE_MAX_MEMORY_MB="
                       f"{settings.PARSE_MAX_MEMORY_MB}):",
                       f"  worker: stopped by the memory limit in     {spread(times, 's')}",
                       f"  worker process peak memory (VmHWM)         {spread(peaks, 'MB', MB)}"]
        print("\n".join(self.lines[-9:]), flush=True)

    def summary(self, load) -> None:
        print(f"\nSummary — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU cores, Python "
              f"{platform.python_version()}, load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
              f"after {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {RUNS} runs each")
        for line in self.lines:
            print(f"  {line}")


if __name__ == "__main__":
    sys.exit(main())
