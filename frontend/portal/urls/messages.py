from django.urls import path

from ..views import messages

urlpatterns = [
    path("messages/", messages.MessagesView.as_view(), name="messages"),
    path("trips/<int:trip>/messages/", messages.TripMessageView.as_view(), name="trip_message"),
    path("trips/<int:trip>/survey/", messages.SurveyView.as_view(), name="survey"),
    path("trips/<int:trip>/complaint/", messages.ComplaintView.as_view(), name="complaint"),
]
