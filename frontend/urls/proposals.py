"""Staff pages of proposals (the customer's: frontend.portal.urls.proposals)."""
from django.urls import path

from ..views import proposals

urlpatterns = [
    path("trips/<int:pk>/proposals/", proposals.TripProposalsView.as_view(), name="trip_proposals"),
    path("trips/<int:pk>/proposals/send/", proposals.ProposalSendView.as_view(), name="trip_proposal_send"),
    path("trips/<int:pk>/proposal.pdf", proposals.ProposalPdfView.as_view(), name="trip_proposal_pdf"),
    path("trips/<int:pk>/itinerary.pdf", proposals.ItineraryPdfView.as_view(), name="trip_itinerary_pdf"),
]
