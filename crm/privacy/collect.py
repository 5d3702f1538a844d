"""Everything an agency holds about one customer, found from the models themselves.

``customer_records(customer)`` is the one answer to "which rows are about this person?" for the
per-customer data export (GDPR Art. 15/20, PIPL) and for erasure and retention (``crm.retention``).
It does not keep a list of models: it walks the model graph Django knows (``Model._meta``), so a
new model with a foreign key to ``Customer`` is found without touching this file.

How the walk goes:

1. The *roots* are the customer and the records merged into it (``merged_into``, followed to a
   bounded depth): a merge moves contact data to the kept record but leaves trips, opportunities and
   the like on the merged-away one, which is still the same person.
2. Every relation that points at ``Customer`` — foreign keys and one-to-ones, hidden ones
   (``related_name="+"``) included, and many-to-manys (a visit's ``met_people``) — gives the rows
   that point at a root (level 1: phones, documents, trips, opportunities, consent, …).
3. Then every relation pointing at a row already found gives more rows (level 2: a trip's items,
   travelers and payments, a document's reveals, …; level 3: the checks of a company's policy
   versions, …), up to ``DEPTH`` levels. Each level reads ids by indexed foreign-key lookups
   (``fk = ANY(array)``), all the relations of a level in one statement; nothing is loaded but ids.
   Only rows that *belong* to the customer are walked into: those reached through a required
   relation (a non-null foreign key or one-to-one: a trip's buyer, a payment's trip). Rows that
   only *mention* the customer through an optional relation (``null=True``: a colleague's
   ``reports_to``, a policy's travel manager, an approver, a visit's ``met_people``) are collected
   but not walked into, so a travel manager's records do not grow into every booking of the company.
4. ``HOOKS`` add rows keyed some other way than a foreign key (register one with
   :func:`register_hook`); ``SKIP`` names relations deliberately not followed, each with its reason.

``tests/test_customer_data_export.py`` fails when a model with a relation to ``Customer`` is
neither reached by the walk nor named in ``SKIP``.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from django.apps import apps
from django.db import connection, models
from django.db.models.expressions import RawSQL

from crm.customers.models import Customer

# Levels of rows below the customer: 1 = rows pointing at the customer, 2 = rows pointing at those, …
DEPTH = 3
# How many merges deep the roots are followed (a merged-away record merged into another, …).
MERGE_DEPTH = 5

# Relations not followed, as "app_label.Model.field": reason. Keep each reason honest.
SKIP: dict[str, str] = {
    "crm.Customer.merged_into": "merged-away records are roots themselves (see customer_roots)",
}


class Records(NamedTuple):
    """One model's rows about the customer: ``for model, queryset in customer_records(c)``."""

    model: type[models.Model]
    queryset: models.QuerySet


class Edge(NamedTuple):
    """A relation from ``child`` to ``parent``: ``child.objects.filter(<lookup>__in=parent ids)``.
    ``owns``: a required foreign key or one-to-one, so the child row belongs to the parent's."""

    child: type[models.Model]
    lookup: str  # a field name on child (FK, one-to-one or many-to-many)
    parent: type[models.Model]
    owns: bool

    @property
    def key(self) -> str:
        return f"{self.child._meta.label}.{self.lookup}"


# A hook: (root customer ids) -> iterable of (model, queryset) for rows keyed without a foreign key.
Hook = Callable[[list[int]], Iterable[tuple[type[models.Model], models.QuerySet]]]
HOOKS: list[Hook] = []


def register_hook(hook: Hook) -> Hook:
    """Add rows about a customer that no foreign key leads to (usable as a decorator)."""
    HOOKS.append(hook)
    return hook


@functools.cache
def _relations_to(target: type[models.Model]) -> list[Edge]:
    """Every forward relation of every installed model (through tables included) that points at ``target``."""
    edges = []
    for model in apps.get_models(include_auto_created=True):
        for field in model._meta.get_fields(include_hidden=True):
            if not isinstance(field, models.Field) or not field.is_relation or field.related_model is not target:
                continue  # reverse accessors (ForeignObjectRel) are not Fields: the forward side only
            if field.many_to_one or field.one_to_one or field.many_to_many:
                edge = Edge(model, field.name, target, owns=not field.many_to_many and not field.null)
                if edge.key not in SKIP:
                    edges.append(edge)
    return edges


def customer_graph(depth: int = DEPTH) -> dict[type[models.Model], list[Edge]]:
    """The models the walk can reach from ``Customer`` within ``depth`` levels, each with the
    relations that lead to it. Static (no database); the completeness test reads it."""
    reached: dict[type[models.Model], list[Edge]] = {}
    frontier = [Customer]  # models walked into at the next level
    expanded = {Customer}
    for _level in range(depth):
        next_frontier = []
        for parent in frontier:
            for edge in _relations_to(parent):
                if edge not in reached.setdefault(edge.child, []):
                    reached[edge.child].append(edge)
                if edge.owns and edge.child not in expanded:
                    expanded.add(edge.child)
                    next_frontier.append(edge.child)
        frontier = next_frontier
    return reached


def customer_roots(customer: Customer) -> list[int]:
    """The customer's id and those of the records merged into it (directly or through another merge)."""
    ids = [customer.pk]
    frontier = [customer.pk]
    for _ in range(MERGE_DEPTH):
        frontier = [pk for pk in Customer._base_manager.filter(merged_into__in=frontier).values_list("pk", flat=True)
                    if pk not in ids]
        if not frontier:
            break
        ids.extend(frontier)
    return ids


def ids_in(ids) -> RawSQL:
    """``<field>__in=ids_in(ids)``: one array parameter instead of one per id (a big customer's
    trips number thousands), and the planner can still probe the field's index."""
    return RawSQL("SELECT unnest(%s::bigint[])", [sorted(ids)])


def _edge_sql(edge: Edge) -> str:
    """``SELECT <child pk> FROM <child> WHERE <fk> = ANY(%s)`` for one relation (through its table for a
    many-to-many)."""
    quote = connection.ops.quote_name
    field = edge.child._meta.get_field(edge.lookup)
    if field.many_to_many:
        through = field.remote_field.through._meta
        child_column = through.get_field(field.m2m_field_name()).column
        parent_column = through.get_field(field.m2m_reverse_field_name()).column
        return f"SELECT {quote(child_column)}::bigint FROM {quote(through.db_table)} WHERE {quote(parent_column)} = ANY(%s::bigint[])"
    child = edge.child._meta
    return f"SELECT {quote(child.pk.column)}::bigint FROM {quote(child.db_table)} WHERE {quote(field.column)} = ANY(%s::bigint[])"


def _ids_pointing_at(asks: list[tuple[Edge, set]]) -> list[set]:
    """For each (relation, parent ids): the ids of the child rows pointing at those parents. One
    statement for them all (``UNION ALL`` of indexed ``fk = ANY(array)`` lookups): a level of the walk
    is one round trip however many relations it follows."""
    found: list[set] = [set() for _ in asks]
    parts, params = [], []
    for n, (edge, parent_ids) in enumerate(asks):
        if parent_ids:
            parts.append(f"SELECT {n}, id FROM ({_edge_sql(edge)}) AS r{n}(id)")
            params.append(sorted(parent_ids))
    if not parts:
        return found
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        for n, pk in cursor.fetchall():
            found[n].add(pk)
    return found


def customer_record_ids(customer: Customer, depth: int = DEPTH) -> dict[type[models.Model], set]:
    """{model: primary keys} of every row about ``customer`` (the roots under ``Customer``).

    Semi-naive: each level follows only the relations whose parent model gained owned rows in the
    level before, and only from those new parent ids; one statement per level."""
    roots = set(customer_roots(customer))
    found: dict[type[models.Model], set] = {Customer: set(roots)}
    owned: dict[type[models.Model], set] = {Customer: set(roots)}  # rows walked into
    new: dict[type[models.Model], set] = {Customer: set(roots)}
    for _level in range(depth):
        asks = [(edge, parent_ids) for parent, parent_ids in new.items() for edge in _relations_to(parent)]
        gained: dict[type[models.Model], set] = {}
        for (edge, _parent_ids), ids in zip(asks, _ids_pointing_at(asks)):
            found.setdefault(edge.child, set()).update(ids)
            if edge.owns:
                fresh = ids - owned.setdefault(edge.child, set())
                if fresh:
                    owned[edge.child].update(fresh)
                    gained.setdefault(edge.child, set()).update(fresh)
        new = gained
        if not new:
            break
    return {model: ids for model, ids in found.items() if ids}


def customer_records(customer: Customer, depth: int = DEPTH) -> Iterator[Records]:
    """(model, queryset) for every model holding rows about ``customer``; ``Customer`` first
    (the customer and its merged-away records), then the others by label. Models with no rows
    are left out. Querysets use the base manager (no default filters) and are ordered by pk.

    A model appears once; rows reached by several relations (a task of the customer's opportunity
    that also names the customer) appear once in its queryset. Hook rows follow, one entry per hook
    result (a hook's model may repeat one found by the walk)."""
    found = customer_record_ids(customer, depth)
    order = [Customer] + sorted((m for m in found if m is not Customer), key=lambda m: m._meta.label)
    for model in order:
        yield Records(model, model._base_manager.filter(pk__in=ids_in(found[model])).order_by("pk"))
    roots = sorted(found[Customer])
    for hook in HOOKS:
        for model, queryset in hook(roots):
            yield Records(model, queryset)
