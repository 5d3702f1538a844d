"""Staff: the customers' portal messages on the trip page and the card (frontend.views.portal_messages)."""
from django.urls import path

from ..views import portal_messages

urlpatterns = [
    path("trips/<int:pk>/portal-messages/", portal_messages.TripMessagesView.as_view(), name="trip_portal_messages"),
    path("trips/<int:pk>/portal-messages/reply/", portal_messages.TripReplyView.as_view(), name="trip_portal_reply"),
    path("customers/<int:pk>/portal-messages/", portal_messages.CustomerMessagesView.as_view(),
         name="customer_portal_messages"),
    path("customers/<int:pk>/portal-messages/reply/", portal_messages.CustomerReplyView.as_view(),
         name="customer_portal_reply"),
]
