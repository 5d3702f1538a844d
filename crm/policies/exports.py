"""The compliance and savings report as CSV (BOM for Excel, formula-safe cells, like crm.customers.exports)."""
from collections.abc import Iterator
import csv

from django.utils.translation import gettext as _

from crm.customers.exports import _Line, _row

from .selectors import ComplianceReport


def report_csv(report: ComplianceReport) -> Iterator[str]:
    """Figures first, then the exception reasons, then the proposal per trip."""
    writer = csv.writer(_Line())
    yield "\ufeff" + _row(writer, [_("Compliance and savings report"), report.account.name,
                                   report.date_from.isoformat(), report.date_to.isoformat()])
    yield _row(writer, [_("checked bookings"), report.checked])
    yield _row(writer, [_("in policy"), report.compliant])
    yield _row(writer, [_("share in policy (%)"), "" if report.compliance_rate is None else report.compliance_rate])
    yield _row(writer, [_("missed savings"), report.missed_savings, report.currency])
    for status, count in report.approvals.items():
        yield _row(writer, [_("approvals: %(status)s") % {"status": status}, count])
    yield _row(writer, [])
    yield _row(writer, [_("exception reason"), _("code"), _("count")])
    for code, label, count in report.reasons:
        yield _row(writer, [label, code, count])
    yield _row(writer, [])
    yield _row(writer, [_("trip"), _("title"), _("checked bookings"), _("paid"), _("within policy"), _("saving")])
    for trip in report.trips:
        yield _row(writer, [trip["reference"], trip["title"], trip["checked"], trip["paid"], trip["within_policy"],
                            trip["saving"]])
    yield _row(writer, [_("total"), "", report.checked, report.paid, report.within_policy, report.proposed_saving])
