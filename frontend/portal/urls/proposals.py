from django.urls import path

from ..views import proposals

urlpatterns = [
    path("trips/<int:trip>/proposal/", proposals.ProposalView.as_view(), name="proposal"),
    path("trips/<int:trip>/proposal/<int:proposal>/pdf/", proposals.ProposalPdfView.as_view(), name="proposal_pdf"),
    path("trips/<int:trip>/itinerary.pdf", proposals.ItineraryPdfView.as_view(), name="itinerary_pdf"),
]
