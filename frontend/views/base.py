"""The one base of every agency page: who may see it (after the sealed API base, caravan.api.views).

``AgencyPage.dispatch`` is the fence: agency host only (404 elsewhere), signed-in active staff only
(the log-in page otherwise; 403 for operators and deactivated staff), ``required_cap`` if set, then
``permits(user)`` for pages that more than one capability opens. It is sealed: a page (or a mixin it
puts before the fence) that defines ``dispatch`` or ``setup`` is refused at import time, so no page
can run code before the fence. Agency-host routes that are not pages are on ``frontend.public``'s
one list, and ``tests/test_fences.py`` holds every route to one or the other.
"""
from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import NoReverseMatch, resolve, reverse

from caravan.tenancy import current_agency

_SEALED = ("dispatch", "setup")


class AgencyPage(AccessMixin):
    """An agency page: agency host only, signed-in active staff only, ``required_cap`` and ``permits``."""

    required_cap: str | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for klass in cls.__mro__:
            if klass is AgencyPage or klass.__module__.startswith("django."):
                continue
            for name in _SEALED:
                if name in vars(klass):
                    raise TypeError(
                        f"{cls.__name__}: {klass.__name__} defines {name}(), which would run around the agency "
                        f"page fence (frontend.views.base.AgencyPage). Set required_cap, override "
                        f"permits(user) for a check after the fence, or do the work in get()/post().")

    def permits(self, user) -> bool:
        """More than ``required_cap``, for pages any of several capabilities opens. Called after the fence
        (agency host, signed-in active staff), so ``user`` is a staff member of this agency."""
        return True

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
        if not self.permits(user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


def opens_for(user, url_name: str, *args) -> bool:
    """Whether the agency page named ``url_name`` lets ``user`` in, by the same ``required_cap`` and
    ``permits`` its fence checks: a page links another only when its reader may open it (issue 20: a
    service agent's dashboard linked the clocks they are refused)."""
    try:
        view_class = getattr(resolve(reverse(url_name, args=args)).func, "view_class", None)
    except NoReverseMatch:
        return False
    if view_class is None or not issubclass(view_class, AgencyPage):
        return True
    if user is None or not user.is_authenticated or not user.is_active or user.is_operator:
        return False
    if view_class.required_cap and not user.can(view_class.required_cap):
        return False
    return view_class().permits(user)
