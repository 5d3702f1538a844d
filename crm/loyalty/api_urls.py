"""API routes for crm.loyalty, under /api/v1/."""
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("care/occasions", api.OccasionViewSet, basename="care-occasion")
router.register("care/greetings", api.GreetingViewSet, basename="care-greeting")
router.register("care/suggestions", api.SuggestionViewSet, basename="care-suggestion")
router.register("care/win-backs", api.WinBackViewSet, basename="care-win-back")
router.register("care/referrals", api.ReferralViewSet, basename="care-referral")

urlpatterns = router.urls
