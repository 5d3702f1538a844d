"""Shared bits for agency pages: who may see them."""
from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404

from caravan.tenancy import current_agency


class AgencyPage(AccessMixin):
    """An agency page: agency host only, signed-in active staff only, and ``required_cap`` if set."""

    required_cap: str | None = None

    def dispatch(self, request, *args, **kwargs):
        if current_agency() is None:
            raise Http404
        user = request.user
        if not user.is_authenticated:
            return self.handle_no_permission()
        if not user.is_active or user.is_operator:
            raise PermissionDenied
        if self.required_cap and not user.can(self.required_cap):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)
