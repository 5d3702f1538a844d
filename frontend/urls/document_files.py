"""Document scans, staff side (crm.documents; the portal's upload: frontend.portal.urls.documents)."""
from django.urls import path

from ..views import document_files as views

urlpatterns = [
    path("documents/review/", views.ReviewListView.as_view(), name="document_review"),
    path("document-files/<int:pk>/review/", views.ReviewView.as_view(), name="document_file_review"),
    path("document-files/<int:pk>/file/", views.FileView.as_view(), name="document_file"),
    path("trips/<int:pk>/document-files/", views.TripFilesView.as_view(), name="trip_document_files"),
    path("customers/<int:pk>/document-files/", views.CustomerFilesView.as_view(), name="customer_document_files"),
]
