"""Customer import and export pages (R-CUST-8)."""
from django.urls import path

from ..views import customer_exports, imports

urlpatterns = [
    path("customers/import/", imports.ImportStartView.as_view(), name="customer_import"),
    path("customers/import/<int:pk>/", imports.ImportDetailView.as_view(), name="customer_import_detail"),
    path("customers/import/<int:pk>/mapping/", imports.ImportMappingView.as_view(), name="customer_import_mapping"),
    path("customers/export/", imports.ExportView.as_view(), name="customer_export"),
    path("customers/exports/", customer_exports.ExportStartView.as_view(), name="customer_export_start"),
    path("customers/exports/<int:pk>/", customer_exports.ExportDetailView.as_view(), name="customer_export_detail"),
    path("customers/exports/<int:pk>/download/", customer_exports.ExportDownloadView.as_view(),
         name="customer_export_download"),
]
