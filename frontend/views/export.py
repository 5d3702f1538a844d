"""The agency admin's data export (R-PLAT-2; docs/portability.md): start an export of everything the
agency holds, watch it being made (htmx polls the progress), download it while it is kept.

Only this agency's exports are found (another agency's export id is a 404), only with
``Cap.DATA_EXPORT``; every download is logged in the agency's history. The page stays usable while
the agency is read-only (``caravan.tenancy.middleware`` exempts it): a suspended agency, or one
scheduled for deletion, can still take its data out.
"""
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View

from accounts.roles import Cap
from caravan.tenancy import require_agency
from tenants.portability import services
from tenants.portability.models import AgencyExport

from .base import AgencyPage


def _own_export(pk) -> AgencyExport:
    return get_object_or_404(AgencyExport.objects.all(), pk=pk)  # scoped to the active agency


class ExportView(AgencyPage, View):
    required_cap = Cap.DATA_EXPORT

    def get(self, request):
        agency = require_agency()
        exports = [(e, services.progress(e)) for e in AgencyExport.objects.all()[:10]]
        return render(request, "frontend/export/page.html", {"agency": agency, "exports": exports,
                                                             "retention": settings.EXPORT_RETENTION_HOURS})

    def post(self, request):
        try:
            export = services.export_request(agency=require_agency(), actor=request.user.email)
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
            return redirect("agency_export")
        messages.success(request, _("The export is being prepared; this page shows its progress."))
        return redirect("agency_export_detail", pk=export.pk)


class ExportDetailView(AgencyPage, View):
    """One export's progress (an htmx fragment while it runs) and its download link."""

    required_cap = Cap.DATA_EXPORT

    def get(self, request, pk):
        export = _own_export(pk)
        done, total = services.progress(export)
        context = {"export": export, "done": done, "total": total,
                   "percent": min(100, done * 100 // total) if total else 0}
        template = "frontend/export/_progress.html" if request.htmx else "frontend/export/detail.html"
        return render(request, template, context)


class ExportDownloadView(AgencyPage, View):
    required_cap = Cap.DATA_EXPORT

    def get(self, request, pk):
        export = _own_export(pk)
        try:
            path = services.export_download(export=export, actor=request.user.email)
        except ValidationError:
            raise Http404 from None
        agency = require_agency()
        return FileResponse(open(path, "rb"), as_attachment=True, content_type="application/zip",
                            filename=services.download_name(export, agency.slug))
