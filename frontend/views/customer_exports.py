"""Large customer exports (R-CUST-8): the list export of more than ``CUSTOMER_EXPORT_DIRECT_ROWS``
customers is made in the background (``crm.customers.exports``), its page shows the progress, and the person who
asked downloads the file when it is ready. Only they find it: another user's export, another agency's
or a guessed id is a 404, and the file is served from private storage, never from MEDIA."""
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View

from accounts.roles import Cap
from crm.customers import exports
from crm.customers.models import CustomerExport

from .base import AgencyPage
from .customers import list_filters


def _own(request, pk) -> CustomerExport:
    return get_object_or_404(CustomerExport, pk=pk, created_by=request.user)


def confirm(request, given: dict, count_from: int):
    """The page that offers a background export for a list too long to answer at once."""
    fmt = "xlsx" if request.GET.get("format") == "xlsx" else "csv"
    return render(request, "frontend/exports/confirm.html", {"given": given, "format": fmt, "at_least": count_from,
                                                             "recent": CustomerExport.objects.filter(created_by=request.user)[:5]})


class ExportStartView(AgencyPage, View):
    required_cap = Cap.CUSTOMERS_IMPORT

    def post(self, request):
        _typed, _given, filters = list_filters(request.POST, request.user)
        try:
            job = exports.export_request(actor=request.user, filters=filters, format=request.POST.get("format", "csv"))
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
            return redirect("customer_list")
        messages.success(request, _("The export is being prepared; this page shows its progress, and we will e-mail "
                                    "you when it is ready."))
        return redirect("customer_export_detail", pk=job.pk)


class ExportDetailView(AgencyPage, View):
    """One export's progress (an htmx fragment, polled while it is prepared) and its download link."""

    required_cap = Cap.CUSTOMERS_IMPORT

    def get(self, request, pk):
        job = _own(request, pk)
        context = {"job": job, "percent": min(100, job.done_rows * 100 // job.total_rows) if job.total_rows else 0}
        template = "frontend/exports/_progress.html" if request.htmx else "frontend/exports/detail.html"
        return render(request, template, context)


class ExportDownloadView(AgencyPage, View):
    required_cap = Cap.CUSTOMERS_IMPORT

    def get(self, request, pk):
        job = _own(request, pk)
        try:
            path = exports.export_download(job=job, actor=request.user)
        except ValidationError:
            raise Http404 from None
        content_type = "text/csv; charset=utf-8" if job.format == CustomerExport.Format.CSV else \
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return FileResponse(open(path, "rb"), as_attachment=True, content_type=content_type,
                            filename=f"customers-{job.created_at:%Y%m%d-%H%M}.{job.format}")
