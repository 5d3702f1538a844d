"""Agency pages for crm.destinations, the destination knowledge base (see frontend/views/destinations.py)."""
from django.urls import path

from ..views import destinations as views

urlpatterns = [
    path("destinations/", views.DestinationListView.as_view(), name="destination_list"),
    path("destinations/new/", views.DestinationCreateView.as_view(), name="destination_create"),
    path("destinations/shared/", views.SharedListView.as_view(), name="destination_shared"),
    path("destinations/shared/<int:pk>/copy/", views.SharedCopyView.as_view(), name="destination_shared_copy"),
    path("destinations/import/", views.ImportView.as_view(), name="destination_import"),
    path("destinations/import/<int:pk>/", views.ImportDetailView.as_view(), name="destination_import_detail"),
    path("destinations/<int:pk>/", views.DestinationDetailView.as_view(), name="destination_detail"),
    path("destinations/<int:pk>/edit/", views.DestinationEditView.as_view(), name="destination_edit"),
    path("destinations/<int:pk>/delete/", views.DestinationDeleteView.as_view(), name="destination_delete"),
    path("destinations/<int:pk>/visa/", views.VisaNoteSaveView.as_view(), name="destination_visa_save"),
    path("destinations/visa/<int:pk>/checked/", views.VisaNoteCheckedView.as_view(), name="destination_visa_checked"),
    path("destinations/<int:pk>/attachments/", views.AttachmentAddView.as_view(), name="destination_attachment_add"),
    path("destinations/attachments/<int:pk>/", views.AttachmentDownloadView.as_view(), name="destination_attachment"),
    path("destinations/attachments/<int:pk>/remove/", views.AttachmentRemoveView.as_view(),
         name="destination_attachment_remove"),
    path("trips/<int:pk>/checklist-from-visa-notes/", views.TripChecklistFromVisaNotesView.as_view(),
         name="trip_checklist_from_visa_notes"),
    path("customers/<int:pk>/destinations/", views.CustomerDestinationsPanel.as_view(), name="customer_destinations"),
]
