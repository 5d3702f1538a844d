"""Filled in by the Customer 360 work (issue 3)."""
urlpatterns = []
