"""Base classes for the agency API (after PostHog's sealed TeamAndOrgViewSetMixin).

Every endpoint under ``/api/v1/`` subclasses :class:`AgencyViewSet` or :class:`AgencyAPIView`.
They
- refuse to serve anywhere but an agency host (404 on the platform domain);
- always require an authenticated, active staff member of *this* agency;
- check the view's ``required_caps`` per action (403 otherwise);
- are sealed: a subclass (or a mixin before the base) that overrides ``get_queryset``,
  ``get_object``, ``get_permissions`` or ``get_authenticators`` is rejected at import time, so a new
  endpoint cannot forget the fence nor fetch a record outside it. Subclasses implement
  ``agency_queryset()`` instead: an id that is missing or not visible answers the same 404, and a
  rule about a found record (a merged-away customer, say) belongs to the service it is written by.
"""
from django.conf import settings
from django.http import Http404
from django.utils import translation
from rest_framework import permissions, viewsets
from rest_framework.views import APIView

from caravan.tenancy import current_agency


class IsAgencyStaff(permissions.BasePermission):
    def has_permission(self, request, view):
        if current_agency() is None:
            raise Http404  # agency API is not on the platform domain
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and not user.is_operator)


class HasRequiredCaps(permissions.BasePermission):
    """``view.required_caps`` maps an action (or HTTP method) to the capability it needs."""

    def has_permission(self, request, view):
        caps = getattr(view, "required_caps", {})
        action = getattr(view, "action", None) or request.method.lower()
        needed = caps.get(action, caps.get("*"))
        if needed is None:
            return False  # an action nobody declared is closed, not open
        return needed == "authenticated" or request.user.can(needed)


_SEALED = ("get_queryset", "get_object", "get_permissions", "get_authenticators")


class _Sealed:
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_fence_base"):
            return
        for klass in cls.__mro__:
            if klass.__dict__.get("_fence_base") or klass.__module__.startswith("rest_framework."):
                continue
            for name in _SEALED:
                if name in klass.__dict__:
                    raise TypeError(f"{cls.__name__} overrides {name} (in {klass.__name__}); implement "
                                    f"agency_queryset()/required_caps instead.")


class _PagesOnlyForLists:
    """Only ``list``, or an action declared ``@action(..., paginated=True)``, answers a page; any other
    action answering many records answers a bare array. The schema follows the same rule
    (``caravan.api.schema``), so what is documented as a page is one."""

    paginated = False

    @property
    def paginator(self):
        if getattr(self, "action", None) != "list" and not self.paginated:
            return None
        return super().paginator


class _ReaderLanguage:
    """A token-authenticated request is known to be a person only once DRF has authenticated it
    (after the middleware chose the agency's language): answer in that person's language, as the
    pages do, so the texts the system wrote read in it (``caravan.texts``)."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        language = getattr(request.user, "language", "")
        if language and settings.LANGUAGE_COOKIE_NAME not in request.COOKIES:
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()


class AgencyAPIView(_ReaderLanguage, _Sealed, APIView):
    _fence_base = True
    required_caps: dict[str, str] = {}

    def get_permissions(self):
        return [IsAgencyStaff(), HasRequiredCaps()]


class AgencyViewSet(_ReaderLanguage, _Sealed, _PagesOnlyForLists, viewsets.GenericViewSet):
    _fence_base = True
    required_caps: dict[str, str] = {}
    # Agency records have integer keys: anything else in their place is a 404 from the router,
    # never a ValueError from the query (GET /api/v1/service-clocks/abc/ answered 500).
    lookup_value_regex = r"[0-9]+"

    def agency_queryset(self):
        raise NotImplementedError

    def get_queryset(self):
        return self.agency_queryset()

    def get_permissions(self):
        return [IsAgencyStaff(), HasRequiredCaps()]


class IsOperator(permissions.BasePermission):
    def has_permission(self, request, view):
        if current_agency() is not None:
            raise Http404  # the operator API is not on agency hosts
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_operator)


class OperatorViewSet(_PagesOnlyForLists, viewsets.GenericViewSet):
    permission_classes = [IsOperator]
