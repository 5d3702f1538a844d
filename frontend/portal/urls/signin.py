from django.urls import path

from ..views import signin

urlpatterns = [
    path("sign-in/", signin.SignInView.as_view(), name="sign_in"),
    path("sign-in/check/", signin.CheckView.as_view(), name="check"),
    path("link/<str:token>/", signin.LinkView.as_view(), name="link"),
    path("sign-out/", signin.SignOutView.as_view(), name="sign_out"),
    path("language/", signin.LanguageView.as_view(), name="language"),
    path("logo/", signin.LogoView.as_view(), name="logo"),
]
