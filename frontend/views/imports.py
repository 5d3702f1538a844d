"""Customer import and export pages (R-CUST-8): upload → mapping → check → import → progress.

Thin: crm.customers.imports reads, checks and imports; crm.customers.tasks runs the import in the background;
crm.customers.exports writes the files.
"""
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.roles import Cap
from caravan.forms import errors_onto
from crm.customers import imports, selectors
from crm.privacy import services as privacy
from crm.customers import exports
from crm.customers.exports import export_customers_csv, export_customers_xlsx
from crm.customers.models import ImportJob
from crm.customers.tasks import import_customers

from . import customer_exports
from .base import AgencyPage
from .customers import list_filters

Status = ImportJob.Status


class UploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("Spreadsheet"),
                           help_text=gettext_lazy("A .csv or .xlsx file of up to 20 MB; the first row names the columns."),
                           widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx"}))


class MappingForm(forms.Form):
    """One select per column of the file: which customer field it holds."""

    def __init__(self, headers: list[str], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.headers = headers
        choices = [("", gettext_lazy("— leave out —")), *imports.FIELDS.items()]
        for index, header in enumerate(headers):
            self.fields[f"col{index}"] = forms.ChoiceField(label=header, choices=choices, required=False)

    @classmethod
    def for_job(cls, job: ImportJob, headers: list[str], data=None) -> "MappingForm":
        initial = {f"col{i}": job.mapping.get(h, "") for i, h in enumerate(headers)}
        return cls(headers, data=data, initial=initial)

    def mapping(self) -> dict[str, str]:
        return {header: self.cleaned_data.get(f"col{i}") or "" for i, header in enumerate(self.headers)}


class ImportStartView(AgencyPage, View):
    required_cap = Cap.CUSTOMERS_IMPORT

    def get(self, request):
        return self._page(request, UploadForm())

    def post(self, request):
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            with errors_onto(form):
                job, _headers = imports.job_create(actor=request.user, upload=form.cleaned_data["file"])
                return redirect("customer_import_mapping", pk=job.pk)
        return self._page(request, form, status=400)

    def _page(self, request, form, status=200):
        jobs = ImportJob.objects.select_related("created_by")[:10]
        return render(request, "frontend/imports/start.html", {"form": form, "jobs": jobs}, status=status)


class ImportMappingView(AgencyPage, View):
    """Which column is which, a preview, the dry-run report, and the button that starts the import.

    The file is read and checked by a worker (``crm.check_import``), never here: while it works the
    page polls (htmx, every second) and reloads itself once there is something new to show."""

    required_cap = Cap.CUSTOMERS_IMPORT
    WORKING = ("reading", "queued", "checking")

    def get(self, request, pk):
        job = get_object_or_404(ImportJob, pk=pk)
        if job.status not in (Status.UPLOADED, Status.CHECKED):
            return self._leave(request, job)
        progress = imports.progress(job)
        if request.htmx:  # the poll: a fragment while the worker works, then a reload
            if progress["state"] in self.WORKING:
                return render(request, "frontend/imports/_working.html", {"job": job, "progress": progress})
            response = HttpResponse(status=204)
            response["HX-Refresh"] = "true"
            return response
        if progress["state"] == "reading" and not (imports.state(job).get("task") or {}):
            imports.read_request(job)  # an upload from before reading moved to the worker
        headers, rows = imports.preview(job)
        return self._page(request, job, MappingForm.for_job(job, headers or []), rows, progress)

    def post(self, request, pk):
        job = get_object_or_404(ImportJob, pk=pk)
        if job.status not in (Status.UPLOADED, Status.CHECKED):
            return redirect("customer_import_detail", pk=job.pk)
        headers, rows = imports.preview(job)
        if headers is None:
            return redirect("customer_import_mapping", pk=job.pk)
        form = MappingForm.for_job(job, headers, data=request.POST)
        if form.is_valid():
            with errors_onto(form):
                try:
                    if request.POST.get("action") == "run":
                        imports.job_start(job, mapping=form.mapping())
                        import_customers.delay(job.pk)
                        return redirect("customer_import_detail", pk=job.pk)
                    imports.check_request(job, mapping=form.mapping())
                    return redirect(reverse("customer_import_mapping", args=[job.pk]) + "#report")
                except imports.ImportAlreadyStarted:
                    return redirect("customer_import_detail", pk=job.pk)
                except imports.NotReadYet:
                    return redirect("customer_import_mapping", pk=job.pk)
        return self._page(request, job, form, rows, imports.progress(job), status=400)

    @staticmethod
    def _leave(request, job):
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = reverse("customer_import_detail", args=[job.pk])
            return response
        return redirect("customer_import_detail", pk=job.pk)

    @staticmethod
    def _page(request, job, form, rows, progress, status=200):
        labels = {key: str(label) for key, label in imports.FIELDS.items()}
        report = progress["report"]
        if report:
            report = {**report, "errors": [{**error, "label": labels.get(error["field"], "")}
                                           for error in imports.errors_shown(report["errors"])]}
        return render(request, "frontend/imports/mapping.html", {
            "job": job, "form": form, "columns": list(zip(form.headers, form)), "rows": rows, "report": report,
            "progress": progress, "working": progress["state"] in ImportMappingView.WORKING,
        }, status=status)


class ImportDetailView(AgencyPage, View):
    """Progress while the import runs (polled by htmx every second), then the result."""

    required_cap = Cap.CUSTOMERS_IMPORT

    def get(self, request, pk):
        job = get_object_or_404(ImportJob.objects.select_related("created_by"), pk=pk)
        if job.status in (Status.UPLOADED, Status.CHECKED):
            return redirect("customer_import_mapping", pk=job.pk)
        labels = {key: str(label) for key, label in imports.FIELDS.items()}
        errors = [{**e, "label": labels.get(e["field"], "")} for e in imports.errors_shown(job.errors)]
        context = {"job": job, "errors": errors,
                   "skipped": max(job.processed_rows - job.created_count - job.updated_count, 0),
                   "percent": min(100, job.processed_rows * 100 // job.total_rows) if job.total_rows else 0}
        template = "frontend/imports/_progress.html" if request.htmx else "frontend/imports/detail.html"
        return render(request, template, context)


class ExportView(AgencyPage, View):
    """The customer list, filtered like the list page, as CSV (UTF-8 with BOM) or ``?format=xlsx``."""

    required_cap = Cap.CUSTOMERS_IMPORT

    def get(self, request):
        _typed, given, filters = list_filters(request.GET, request.user)
        customers = selectors.customer_list(filters=filters)
        if not exports.direct(customers):  # too long to answer at once: offered as a background export
            return customer_exports.confirm(request, given, settings.CUSTOMER_EXPORT_DIRECT_ROWS)
        privacy.access_record(user=request.user, what=privacy.What.CUSTOMER_EXPORT, via=privacy.Via.PAGE,
                              detail=urlencode({**given, "format": request.GET.get("format", "csv")}))
        stamp = timezone.localdate().strftime("%Y%m%d")
        if request.GET.get("format") == "xlsx":
            response = HttpResponse(export_customers_xlsx(customers), content_type=(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
            response["Content-Disposition"] = f'attachment; filename="customers-{stamp}.xlsx"'
            return response
        # Made whole before the first byte goes out, and sent with its length: a cut is never silent.
        body = "".join(export_customers_csv(customers)).encode("utf-8")
        response = StreamingHttpResponse(iter([body]), content_type="text/csv; charset=utf-8")
        response["Content-Length"] = str(len(body))
        response["Content-Disposition"] = f'attachment; filename="customers-{stamp}.csv"'
        return response
