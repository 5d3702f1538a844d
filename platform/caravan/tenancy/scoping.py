"""Fail-closed access to shared (public-schema) rows that belong to one agency.

Tables of the shared apps (tenants, billing, integrations) hold rows of every agency side by side.
Each such model declares ``objects = AgencyScopedManager()`` (``AgencyScopedManager("feed__agency")``
for rows keyed through a parent, e.g. a feed's runs). Then:

- ``Model.objects`` (and related managers such as ``feed.runs``) are the rows the *active* agency may
  see: its own, plus the shared ones (agency NULL) where the agency key allows NULL. With no agency
  active (the public schema) they raise :class:`NoAgencyError`.
- ``Model.objects.own()``: only the active agency's own rows (its own feeds, say), never shared ones.
- ``Model.objects.unscoped()``: every agency's rows. Platform code only (console, feed worker,
  billing, portability), and it says so by name.
- ``Model.objects.shared()``: only the shared rows (agency NULL), which belong to no agency.
- ``visible_q`` / ``shared_q``: the same rules as ``Q`` objects, for a filter or an annotation through a
  relation (``Count("feeds", filter=shared_q(Feed, "feeds"))``); ``visible_sql``: the rule for raw SQL.

A foreign key followed from a row (``run.feed``), ``save()``, ``refresh_from_db()`` and cascading
deletes use Django's base manager, a plain ``Manager`` (no ``Meta.base_manager_name`` is set, on
purpose): a row reached from a row already read is within the fence that row was read under.
The managers are left out of migrations (``use_in_migrations`` is False, so Django records them as a
plain ``objects``).
"""
from django.db import models
from django.db.models import Q

from . import NoAgencyError, current_agency


def _path(model) -> str:
    """The agency key of ``model``, as declared on its scoped manager ("agency", "feed__agency")."""
    for manager in model._meta.managers:
        if isinstance(manager, AgencyScopedManager):
            return manager.path
    raise TypeError(f"{model.__name__} has no AgencyScopedManager: its rows are not keyed by agency.")


def _allows_shared(model, path: str) -> bool:
    """Rows may be shared when the last key on the path (the agency itself) may be NULL."""
    field = None
    for part in path.split("__"):
        field = model._meta.get_field(part)
        model = field.related_model
    return field.null


def _active(model):
    agency = current_agency()
    if agency is None:
        raise NoAgencyError(f"{model.__name__} rows are fenced by agency and none is active (public schema); "
                            f"platform code asks for {model.__name__}.objects.unscoped() by name.")
    return agency


def _join(prefix: str, path: str) -> str:
    return f"{prefix}__{path}" if prefix else path


def shared_q(model, prefix: str = "") -> Q:
    """Rows of ``model`` that belong to no agency; ``prefix`` is the relation from the queried model."""
    path = _path(model)
    if not _allows_shared(model, path):
        raise TypeError(f"{model.__name__} rows always belong to one agency: none is shared.")
    return Q(**{f"{_join(prefix, path)}__isnull": True})


def visible_q(model, prefix: str = "", *, agency=None) -> Q:
    """Rows of ``model`` the active agency (or ``agency``) may see: its own, plus shared ones."""
    path = _path(model)
    agency = agency or _active(model)
    own = Q(**{_join(prefix, path): agency.pk})
    return shared_q(model, prefix) | own if _allows_shared(model, path) else own


def visible_sql(model, alias: str, *, param: str = "scope_agency") -> tuple[str, dict]:
    """The manager's rule for raw SQL: the condition over ``alias`` (``model``'s table in the query)
    for the active agency, with its named parameter. Raises :class:`NoAgencyError` with none.

        fence, fence_params = visible_sql(HotelRate, "r")
        cursor.execute(f"SELECT … FROM integrations_hotelrate r WHERE {fence} AND …", {**params, **fence_params})
    """
    path = _path(model)
    if "__" in path:
        raise TypeError(f"{model.__name__} is keyed through {path}: join the parent and fence it instead.")
    column = f"{alias}.{model._meta.get_field(path).column}"
    params = {param: _active(model).pk}
    if _allows_shared(model, path):
        return f"({column} IS NULL OR {column} = %({param})s)", params
    return f"{column} = %({param})s", params


class AgencyScopedManager(models.Manager):
    def __init__(self, path: str = "agency"):
        super().__init__()
        self.path = path

    def deconstruct(self):  # keep migrations free of the constructor argument
        return (False, "caravan.tenancy.scoping.AgencyScopedManager", None, (), {"path": self.path})

    def _rows(self):
        """Every row, but within the relation when this is a related manager (``feed.runs.unscoped()``
        is that feed's runs, not everybody's)."""
        rows = super().get_queryset()
        within = getattr(self, "_apply_rel_filters", None)
        return within(rows) if within is not None else rows

    def get_queryset(self):
        # ``self.model``'s declared path, not ``self.path``: Django builds related managers
        # (``feed.runs``) from this class with no arguments.
        return super().get_queryset().filter(visible_q(self.model))

    def own(self):
        """The active agency's own rows only (no shared ones). Raises without an agency."""
        return self._rows().filter(**{_path(self.model): _active(self.model).pk})

    def shared(self):
        """The rows that belong to no agency (shared inventory, shared feeds)."""
        return self._rows().filter(shared_q(self.model))

    def unscoped(self):
        """Every agency's rows. For platform code only (operator console, feed worker, billing, fan-out jobs)."""
        return self._rows()
