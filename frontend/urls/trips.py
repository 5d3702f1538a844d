"""Agency pages for crm.trips (see frontend/views/trips.py)."""
from django.urls import path

from ..views import inventory
from ..views import trips as views

urlpatterns = [
    path("trips/", views.TripListView.as_view(), name="trip_list"),
    path("trips/new/", views.TripCreateView.as_view(), name="trip_create"),
    path("trips/customers/", views.TravelerChoicesView.as_view(), name="trip_customer_search"),
    path("trips/<int:pk>/", views.TripDetailView.as_view(), name="trip_detail"),
    path("trips/<int:pk>/edit/", views.TripEditView.as_view(), name="trip_edit"),
    path("trips/<int:pk>/status/", views.TripStatusView.as_view(), name="trip_status"),
    path("trips/<int:pk>/quote/", views.TripQuoteView.as_view(), name="trip_quote"),
    path("trips/<int:pk>/travelers/", views.TravelerAddView.as_view(), name="trip_traveler_add"),
    path("trips/<int:pk>/items/", views.ItemAddView.as_view(), name="trip_item_add"),
    path("trips/<int:pk>/inventory/", inventory.TripInventoryView.as_view(), name="trip_inventory"),
    path("trips/<int:pk>/payments/", views.PaymentRecordView.as_view(), name="trip_payment_record"),
    path("trips/items/<int:pk>/", views.ItemEditView.as_view(), name="trip_item_edit"),
    path("trips/travelers/<int:pk>/<slug:action>/", views.TravelerActionView.as_view(), name="trip_traveler_action"),
    path("trips/travelers/<int:pk>/checklist/<slug:action>/", views.ChecklistView.as_view(),
         name="trip_checklist_traveler"),
    path("trips/checklist/<int:pk>/<slug:action>/", views.ChecklistView.as_view(), name="trip_checklist_item"),
    path("pipeline/<int:pk>/quote/", views.OpportunityQuoteView.as_view(), name="opportunity_quote"),
]
