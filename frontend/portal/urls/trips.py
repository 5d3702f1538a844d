from django.urls import path

from ..views import trips

urlpatterns = [
    path("", trips.HomeView.as_view(), name="home"),
    path("trips/<int:pk>/", trips.TripView.as_view(), name="trip"),
]
