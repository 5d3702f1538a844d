from django.urls import path

from ..views import profile

urlpatterns = [
    path("me/", profile.ProfileView.as_view(), name="me"),
]
