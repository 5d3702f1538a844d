from django.urls import path

from caravan.security import allow_stripe

from ..views import payments

urlpatterns = [
    path("trips/<int:trip>/pay/<str:kind>/", allow_stripe(payments.PayView.as_view()), name="pay"),  # CSP: Stripe.js
    path("trips/<int:trip>/payments/<int:payment>/", payments.PaymentView.as_view(), name="payment"),
]
