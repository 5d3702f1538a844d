from django.urls import path

from ..views import documents

urlpatterns = [
    path("trips/<int:trip>/documents/upload/", documents.UploadView.as_view(), name="document_upload"),
    path("trips/<int:trip>/documents/<int:document>/file/", documents.FileView.as_view(), name="document_file"),
]
