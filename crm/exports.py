"""Customer list as CSV, shared by the API and the list page (R-CUST-8)."""
import csv
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

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


def in_pages(queryset: QuerySet, size: int = 500) -> Iterator:
    """The rows of a queryset ordered by ``pk``, read ``size`` at a time by key (``pk > last``).

    Memory stays bounded with or without server-side cursors: behind PgBouncer in transaction
    pooling they are off (caravan.db), and ``.iterator()`` would then read every row at once."""
    last = None
    while True:
        rows = list((queryset if last is None else queryset.filter(pk__gt=last))[:size])
        yield from rows
        if len(rows) < size:
            return
        last = rows[-1].pk


def export_customers_csv(queryset: QuerySet) -> Iterator[str]:
    """Lines of a UTF-8 CSV (starting with a BOM so Excel reads Chinese) for these customers."""
    writer = csv.writer(_Line())
    yield "\ufeff" + _row(writer, [_("id"), _("kind"), _("name"), _("surname (as in passport)"),
                                   _("given names (as in passport)"), _("phones"), _("e-mails"),
                                   _("account manager e-mail"), _("source channel"), _("tags"), _("created")])
    customers = queryset.select_related("owner").prefetch_related("phones", "emails").order_by("pk")
    for customer in in_pages(customers):
        yield _row(writer, [
            customer.pk, customer.kind, customer.name, customer.latin_surname, customer.latin_given,
            "; ".join(p.number for p in customer.phones.all()),
            "; ".join(e.address for e in customer.emails.all()),
            customer.owner.email if customer.owner_id else "", customer.source, "; ".join(customer.tags),
            timezone.localtime(customer.created_at).strftime("%Y-%m-%d %H:%M"),
        ])


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

    sheet.append([text(h) for h in (_("id"), _("kind"), _("name"), _("surname (as in passport)"),
                                     _("given names (as in passport)"), _("phones"), _("e-mails"),
                                     _("account manager e-mail"), _("source channel"), _("tags"), _("created"))])
    customers = queryset.select_related("owner").prefetch_related("phones", "emails").order_by("pk")
    for customer in in_pages(customers):
        sheet.append([
            customer.pk, text(customer.kind), text(customer.name), text(customer.latin_surname),
            text(customer.latin_given), text("; ".join(p.number for p in customer.phones.all())),
            text("; ".join(e.address for e in customer.emails.all())),
            text(customer.owner.email if customer.owner_id else ""), text(customer.source),
            text("; ".join(customer.tags)), timezone.localtime(customer.created_at).replace(tzinfo=None),
        ])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
