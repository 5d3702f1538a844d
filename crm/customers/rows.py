"""Rows written and read by statements written out from the model's fields, for the statements of lead
intake that run on every enquiry (issue 22): Django's compiler cost more CPU than the statement took to
run, and a written-out INSERT can be one part of a larger statement (a CTE with the rows that go with it).

The values are those ``Model.save`` would write: each field's ``pre_save`` (defaults, ``auto_now``)
and ``get_db_prep_save``; a field left to its ``db_default`` is ``DEFAULT``. The text names no schema:
the connection's search path picks the agency's table, as for every other statement.
"""
import functools

from django.db import connection
from django.db.models.expressions import DatabaseDefault


def insert_sql(obj, **expressions: str) -> tuple[str, list]:
    """``INSERT INTO <table> (<every column but the id>) VALUES (…)`` for the unsaved ``obj``, and its
    parameters. A field named in ``expressions`` (by attname) takes that SQL instead of its value."""
    meta = type(obj)._meta
    quote = connection.ops.quote_name
    columns, values, params = [], [], []
    for field in meta.local_concrete_fields:
        if field.primary_key or field.generated:  # as Django's insert: the database gives these
            continue
        columns.append(quote(field.column))
        if field.attname in expressions:
            values.append(expressions[field.attname])
            continue
        value = field.pre_save(obj, True)
        if isinstance(value, DatabaseDefault):
            values.append("DEFAULT")
            continue
        values.append("%s")
        params.append(field.get_db_prep_save(value, connection))
    return f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) VALUES ({', '.join(values)})", params


def inserted(obj, pk):
    """``obj`` as ``save()`` leaves it: its id set, no longer adding, from this connection's database."""
    obj.pk = pk
    obj._state.adding, obj._state.db = False, connection.alias
    return obj


def columns(model, alias: str) -> str:
    """Every concrete column of ``model`` as ``<alias>."<column>"``, in the order :func:`from_row` reads."""
    return ", ".join(f"{alias}.{connection.ops.quote_name(f.column)}" for f in model._meta.concrete_fields)


@functools.cache
def _loaders(model) -> tuple[list[str], int, list]:
    fields = model._meta.concrete_fields
    converters = [(i, f.get_db_converters(connection) + connection.ops.get_db_converters(f.cached_col), f.cached_col)
                  for i, f in enumerate(fields)]
    return [f.attname for f in fields], fields.index(model._meta.pk), [c for c in converters if c[1]]


def from_row(model, values):
    """The instance of ``model`` read from ``values`` (its :func:`columns`), as a queryset would make it;
    None when the row was not there (a LEFT JOIN's NULL id)."""
    names, pk, converters = _loaders(model)
    if values[pk] is None:
        return None
    if converters:
        values = list(values)
        for i, convert, col in converters:
            for converter in convert:
                values[i] = converter(values[i], col, connection)
    return model.from_db(connection.alias, names, values)
