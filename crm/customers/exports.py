"""Customer list as CSV or Excel, shared by the API and the list page (R-CUST-8).

A list of up to ``CUSTOMER_EXPORT_DIRECT_ROWS`` customers is answered at once, whole (with its
length: a cut download is seen as one). A longer one is a background job (``CustomerExport``, leased,
see caravan.leases) that writes a private file under ``EXPORT_ROOT/customers/<schema>/``, shows its
progress, tells the person who asked by e-mail, and is downloaded by them alone while it is kept
(``EXPORT_RETENTION_HOURS``). Its checkpoint is the last customer written and the file's length then:
a run resumed after its worker died cuts the file back to that length and goes on, so no row is lost
or written twice.
"""
import csv
import logging
import os
import secrets
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from caravan import leases
from caravan.tenancy import require_agency

from .hooks import Seen, customer_data_seen
from .models import CustomerExport

log = logging.getLogger(__name__)
PAGE = 1000  # customers written between two checkpoints

# Spreadsheet programs run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Line:
    """A file-like sink for csv.writer that hands back the line it was given."""

    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _row(writer, values: Iterable) -> str:
    return writer.writerow([_cell(v) for v in values])


def in_pages(queryset: QuerySet, size: int = 500, after: int | None = None) -> Iterator:
    """The rows of a queryset ordered by ``pk``, read ``size`` at a time by key (``pk > last``).

    Memory stays bounded with or without server-side cursors: behind PgBouncer in transaction
    pooling they are off (caravan.db), and ``.iterator()`` would then read every row at once."""
    last = after
    while True:
        rows = list((queryset if last is None else queryset.filter(pk__gt=last))[:size])
        yield from rows
        if len(rows) < size:
            return
        last = rows[-1].pk


def export_customers_csv(queryset: QuerySet) -> Iterator[str]:
    """Lines of a UTF-8 CSV (starting with a BOM so Excel reads Chinese) for these customers."""
    writer = csv.writer(_Line())
    yield _csv_header(writer)
    for customer in in_pages(_for_export(queryset)):
        yield _csv_line(writer, customer)


def _headers() -> list[str]:
    """The columns, in the active language. Every column the import reads is headed with the import's own
    label for it (imports.FIELDS, recognised in every language), so an export imports back unmapped by
    hand; id, kind, account manager and created are the import's known bookkeeping columns, left out."""
    from .imports import FIELDS

    return [_("id"), _("kind"), _("name"), _("surname (as in passport)"), _("given names (as in passport)"),
            str(FIELDS["gender"]), str(FIELDS["birthday"]), _("phones"), _("e-mails"), str(FIELDS["address"]),
            str(FIELDS["city"]), _("account manager e-mail"), _("source channel"), _("tags"), str(FIELDS["notes"]),
            str(FIELDS["company"]), str(FIELDS["department"]), str(FIELDS["job_grade"]), str(FIELDS["title"]),
            str(FIELDS["is_booker"]), str(FIELDS["external_ref"]), _("created")]


def _values(customer) -> list:
    """A customer's cells, in the order of :func:`_headers`. One address and one employment per row, as the
    import reads them: the first on file (the active one for the employment)."""
    address = next(iter(customer.addresses.all()), None)
    job = next(iter(customer.employments.all()), None)
    return [
        customer.pk, customer.kind, customer.name, customer.latin_surname, customer.latin_given, customer.gender,
        customer.birthday.isoformat() if customer.birthday else "",
        "; ".join(p.number for p in customer.phones.all()), "; ".join(e.address for e in customer.emails.all()),
        address.line if address else "", address.city if address else "",
        customer.owner.email if customer.owner_id else "", customer.source, "; ".join(customer.tags), customer.notes,
        job.company.name if job else "", job.department if job else "", job.job_grade if job else "",
        job.title if job else "", ("yes" if job.is_booker else "no") if job else "", customer.external_ref,
    ]


def _csv_header(writer) -> str:
    return "\ufeff" + _row(writer, _headers())


def _csv_line(writer, customer) -> str:
    return _row(writer, [*_values(customer), timezone.localtime(customer.created_at).strftime("%Y-%m-%d %H:%M")])


def _for_export(queryset: QuerySet) -> QuerySet:
    from django.db.models import Prefetch

    from .models import Employment

    jobs = Employment.objects.filter(active=True).select_related("company").order_by("id")
    return queryset.select_related("owner").prefetch_related(
        "phones", "emails", "addresses", Prefetch("employments", queryset=jobs)).order_by("pk")


def export_customers_xlsx(queryset: QuerySet) -> bytes:
    """The same columns as :func:`export_customers_csv`, as an Excel workbook. Every text cell is
    written as text, so nothing in it is ever run as a formula."""
    import io

    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_("Customers"))

    def text(value) -> WriteOnlyCell:
        cell = WriteOnlyCell(sheet, value="" if value is None else str(value))
        cell.data_type = "s"
        return cell

    sheet.append([text(h) for h in _headers()])
    for customer in in_pages(_for_export(queryset)):
        pk, *rest = _values(customer)
        sheet.append([pk, *(text(v) for v in rest), timezone.localtime(customer.created_at).replace(tzinfo=None)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- large exports, in the background ------------------------------------------------------------------

def direct(queryset: QuerySet) -> bool:
    """May this list be answered at once (small), or must it be made in the background?"""
    return not queryset[settings.CUSTOMER_EXPORT_DIRECT_ROWS:settings.CUSTOMER_EXPORT_DIRECT_ROWS + 1].exists()


def folder() -> Path:
    """The active agency's private folder for exports (outside MEDIA_ROOT: never served as a file)."""
    path = Path(settings.EXPORT_ROOT) / "customers" / require_agency().schema_name
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def export_request(*, actor, filters: dict, format: str = CustomerExport.Format.CSV) -> CustomerExport:
    """Queue a background export of the customers ``filters`` select (as ``selectors.customer_list``
    takes them); the worker starts once the transaction commits."""
    from .tasks import export_customers

    if format not in CustomerExport.Format.values:
        raise ValidationError({"format": [_("Choose CSV or Excel.")]})
    with transaction.atomic():
        job = CustomerExport.objects.create(created_by=actor, filters=filters, format=format,
                                            file_name=f"{secrets.token_urlsafe(24)}.{format}", **leases.offered())
        leases.watch(CUSTOMER_EXPORT)
        export_customers.delay(job.pk)
    return job


def export_run(job_id: int) -> CustomerExport | None:
    """The worker's part (task ``crm.export_customers``): write the file under the job's lease, page by
    page with a checkpoint after each, then tell the person who asked. None: not ours to run."""
    from . import selectors

    lease = leases.acquire(CUSTOMER_EXPORT, job_id)
    if lease is None:
        return None
    job = CustomerExport.objects.select_related("created_by").get(pk=job_id)
    agency = require_agency()
    path = folder() / job.file_name
    partial = path.with_name(path.name + ".part")
    queryset = selectors.customer_list(filters=job.filters)
    with lease, translation.override(job.created_by.language or agency.language), timezone.override(agency.time_zone):
        if job.format == CustomerExport.Format.CSV:
            _write_csv(job, queryset, partial, lease)
        else:  # a workbook cannot be appended to: a resumed run writes it again
            with transaction.atomic():
                lease.checkpoint(total_rows=queryset.count())
            partial.write_bytes(export_customers_xlsx(queryset))
            job.done_rows = CustomerExport.objects.filter(pk=job.pk).values_list("total_rows", flat=True).get()
        os.chmod(partial, 0o600)
        partial.rename(path)
        now = timezone.now()
        try:
            lease.finish(status=CustomerExport.Status.DONE, done_rows=job.done_rows, size=path.stat().st_size,
                         finished_at=now, checkpoint={},
                         expires_at=now + timedelta(hours=settings.EXPORT_RETENTION_HOURS))
        except leases.LeaseLost:
            return None  # another attempt took over; it finishes the same file
    job.refresh_from_db()
    _tell(job, agency)
    return job


def _write_csv(job: CustomerExport, queryset: QuerySet, partial: Path, lease: leases.Lease) -> None:
    writer = csv.writer(_Line())
    mark = job.checkpoint or {}
    if not mark:  # first attempt: the header, and how many rows to expect
        partial.write_bytes(_csv_header(writer).encode("utf-8"))
        mark = {"last": 0, "offset": partial.stat().st_size}
        job.done_rows = 0
        with transaction.atomic():
            lease.checkpoint(total_rows=queryset.count(), done_rows=0, checkpoint=mark)
    with open(partial, "r+b") as out:
        out.truncate(mark["offset"])  # what the last attempt wrote after its checkpoint goes
        out.seek(mark["offset"])
        page = []
        for customer in in_pages(_for_export(queryset), size=PAGE, after=mark["last"] or None):
            page.append(_csv_line(writer, customer))
            if len(page) == PAGE:
                mark = _flush(job, out, page, customer.pk, lease)
                page = []
        if page:
            _flush(job, out, page, customer.pk, lease)


def _flush(job: CustomerExport, out, lines: list[str], last: int, lease: leases.Lease) -> dict:
    """Write a page of lines to disk, then record that it is there (the checkpoint)."""
    out.write("".join(lines).encode("utf-8"))
    out.flush()
    os.fsync(out.fileno())
    job.done_rows += len(lines)
    mark = {"last": last, "offset": out.tell()}
    with transaction.atomic():
        lease.checkpoint(done_rows=job.done_rows, checkpoint=mark)
    return mark


def _tell(job: CustomerExport, agency) -> None:
    """E-mail the person who asked that the export is ready, with the link to its page."""
    from caravan.mail import mail_each

    try:
        with timezone.override(agency.time_zone):
            mail_each([job.created_by], template="frontend/exports/email/ready", agency=agency,
                      context={"job": job, "url": agency.url(reverse("customer_export_detail", args=[job.pk]))})
    except OSError:
        log.warning("Could not e-mail that customer export %s is ready", job.pk, exc_info=True)


def export_download(*, job: CustomerExport, actor) -> Path:
    """The file of a ready export, for its owner (the caller fenced it); the download is counted and logged."""
    path = folder() / job.file_name
    if not job.downloadable or not path.is_file():
        raise ValidationError(_("This export is not available (not ready, or expired)."))
    CustomerExport.objects.filter(pk=job.pk).update(downloads=job.downloads + 1)
    log.info("Customer export %s downloaded by user %s", job.pk, actor.pk)
    customer_data_seen(user=actor, what=Seen.CUSTOMER_EXPORT,
                       detail=f"export {job.pk}: {urlencode({**job.filters, 'format': job.format})}")
    return path


def expire(*, now=None) -> int:
    """Delete the files of exports past their time (and of exports given up). Returns files deleted."""
    now = now or timezone.now()
    count = 0
    gone = CustomerExport.objects.filter(expires_at__lte=now, status=CustomerExport.Status.DONE) | \
        CustomerExport.objects.filter(status=CustomerExport.Status.FAILED).exclude(file_name="")
    for job in gone:
        for name in (job.file_name, job.file_name + ".part"):
            (folder() / name).unlink(missing_ok=True)
        CustomerExport.objects.filter(pk=job.pk).update(
            file_name="", status=CustomerExport.Status.EXPIRED if job.status == CustomerExport.Status.DONE else job.status)
        count += 1
    return count


def _resume(pk: int) -> None:
    from .tasks import export_customers

    export_customers.delay(pk)


CUSTOMER_EXPORT = leases.register(leases.Kind(
    name="crm.customer_export", model="crm.CustomerExport", active={"status": "running"}, resume=_resume,
    failed=lambda reason: {"status": CustomerExport.Status.FAILED, "finished_at": timezone.now()}))
