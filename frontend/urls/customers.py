"""Customer 360 pages: list, bulk actions, create/edit, the card, its timeline and history, the screen pop."""
from django.urls import path

from ..views import customers

urlpatterns = [
    path("customers/", customers.CustomerListView.as_view(), name="customer_list"),
    path("customers/bulk/", customers.CustomerBulkView.as_view(), name="customer_bulk"),
    path("customers/new/", customers.CustomerCreateView.as_view(), name="customer_create"),
    path("customers/similar/", customers.CustomerSimilarView.as_view(), name="customer_similar"),
    path("customers/<int:pk>/", customers.CustomerDetailView.as_view(), name="customer_detail"),
    path("customers/<int:pk>/edit/", customers.CustomerEditView.as_view(), name="customer_edit"),
    path("customers/<int:pk>/contacts/", customers.ContactAddView.as_view(), name="customer_contact_add"),
    path("customers/<int:pk>/history/", customers.CustomerHistoryView.as_view(), name="customer_history"),
    path("screen-pop/<str:number>/", customers.ScreenPopView.as_view(), name="screen_pop"),
]
