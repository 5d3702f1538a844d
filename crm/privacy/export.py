"""Everything held about one customer as a machine-readable ZIP (GDPR Art. 15 and 20, PIPL).

The archive holds ``data.json`` and, under ``files/``, every file a record names. ``data.json``
(``FORMAT``, ``VERSION``; documented in docs/personal-data.md):

- ``format``, ``version``, ``generated_at`` (UTC, ISO 8601), ``agency`` (name), ``customer``
  (id, name), ``generated_by`` (staff id and name);
- ``models``: for each model label present, its name and its fields' names (in the language of the
  request), so the file explains itself;
- ``records``: ``{"app.Model": [row, …]}`` — every row ``crm.privacy.collect.customer_records``
  finds, each with its concrete fields by column name (``customer_id`` for a foreign key); dates and
  times ISO 8601, decimals as strings. Document numbers are decrypted (``number``); keyed lookup
  hashes and encrypted columns are left out;
- ``references``: names of what the rows point at outside them (``{"pipeline.Stage": {"3": "Won"}}``);
  other customers appear by id only, except companies, which appear by name;
- ``staff``: ``{id: name}`` of the agency's people the rows name;
- ``files``: ``[{"model", "id", "field", "path"}]``, ``path`` inside the archive;
- ``counts``: rows per model.

Built in one read-only pass and in memory up to a few megabytes (then a temporary file): the
bench (bench/customer_data_export.py) found a customer with a large history fast enough to answer
in the request, so no background job and no copy left on disk.
"""
import base64
import datetime
import json
import tempfile
import zipfile
from pathlib import PurePosixPath

from django.contrib.postgres.fields import ArrayField
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.utils import timezone

from accounts.models import User
from caravan.tenancy import require_agency
from crm.customers import crypto
from crm.customers.models import Customer

from .collect import customer_records
from .models import AccessEntry
from .services import access_record

FORMAT = "caravan.customer-data"
VERSION = 1
# Columns never exported: derived search text and keyed hashes (not information about the person).
OMIT = {"crm.Customer": {"search_text"}}
OMIT_SUFFIXES = ("_hash",)


def _decrypt_document(row: dict) -> None:
    row["number"] = crypto.decrypt(row.pop("number_encrypted"))


# Encrypted columns and how to give them back in clear: {label: (column, transform(row))}.
DECRYPT = {"crm.TravelDocument": ("number_encrypted", _decrypt_document)}


def _iso(value):
    return value.isoformat()


def _b64(value):
    return base64.b64encode(bytes(value)).decode()


# Column types whose values JSON cannot hold as they are, and how they are written.
CONVERT = {"DateTimeField": _iso, "DateField": _iso, "TimeField": _iso, "DecimalField": str, "UUIDField": str,
           "DurationField": lambda v: v.total_seconds(), "BinaryField": _b64}


def _converter(field):
    """How to write ``field``'s values in JSON (None: as they are). Decided once per column, not per value."""
    if isinstance(field, ArrayField):
        inner = _converter(field.base_field)
        return (lambda values: [inner(v) if v is not None else None for v in values]) if inner else None
    return CONVERT.get(field.get_internal_type())


def _columns(model) -> list:
    label = model._meta.label
    skip = OMIT.get(label, set())
    return [f for f in model._meta.concrete_fields
            if f.name not in skip and not f.name.endswith(OMIT_SUFFIXES)]


def _describe(model) -> dict:
    names = {}
    for f in _columns(model):
        names[f.attname] = str(getattr(f, "verbose_name", f.name))
    if model._meta.label in DECRYPT:
        names.pop(DECRYPT[model._meta.label][0], None)
        names["number"] = str(model._meta.get_field("masked").verbose_name)
    return {"name": str(model._meta.verbose_name_plural), "fields": names}


def collect(customer: Customer) -> tuple[dict, list]:
    """(data.json as a dict without the header, [(archive path, storage name)]) for ``customer``.

    Rows are read as tuples (``values_list``), not model instances, and each column's conversion is
    chosen once: a customer with thousands of trips is tens of thousands of rows."""
    records, described, files = {}, {}, []
    pointers: dict[type, set] = {}  # FK targets outside the collected rows: model → ids
    collected: dict[type, set] = {}
    for model, queryset in customer_records(customer):
        label = model._meta.label
        columns = _columns(model)
        names = [f.attname for f in columns]
        convert = [(i, c) for i, c in enumerate(_converter(f) for f in columns) if c]
        relations = [(i, f.related_model) for i, f in enumerate(columns) if f.is_relation]
        uploads = [(i, f) for i, f in enumerate(columns) if isinstance(f, models.FileField)]
        pk_at = names.index(model._meta.pk.attname)
        decrypt = DECRYPT.get(label)
        rows = records.setdefault(label, [])
        ids = collected.setdefault(model, set())
        for values in queryset.values_list(*names).iterator(chunk_size=2000):
            values = list(values)
            ids.add(values[pk_at])
            for i, related in relations:
                if values[i] is not None:
                    pointers.setdefault(related, set()).add(values[i])
            for i, conv in convert:
                if values[i] is not None:
                    values[i] = conv(values[i])
            for i, f in uploads:
                if values[i]:
                    path = f"files/{label}/{values[pk_at]}/{f.name}/{PurePosixPath(values[i]).name}"
                    files.append((path, values[i]))
                    values[i] = path
            row = dict(zip(names, values))
            if decrypt:
                decrypt[1](row)
            rows.append(row)
        described[label] = _describe(model)
    staff, references = _references(pointers, collected)
    data = {
        "models": described, "records": records, "references": references, "staff": staff,
        "files": [{"model": path.split("/")[1], "id": int(path.split("/")[2]), "field": path.split("/")[3],
                   "path": path} for path, _name in files],
        "counts": {label: len(rows) for label, rows in records.items()},
    }
    return data, files


def _references(pointers: dict, collected: dict) -> tuple[dict, dict]:
    """Names of staff and of things the rows point at (not other people: customers by id, companies named)."""
    staff, references = {}, {}
    for model, ids in pointers.items():
        ids = ids - collected.get(model, set())
        if not ids:
            continue
        if issubclass(model, User):
            staff.update({str(u.pk): u.full_name or f"#{u.pk}"
                          for u in User.objects.filter(pk__in=ids).only("pk", "full_name")})
            continue
        queryset = model._base_manager.filter(pk__in=ids)
        if model is Customer:
            queryset = queryset.filter(kind=Customer.Kind.COMPANY)
        names = {str(obj.pk): str(obj) for obj in queryset}
        if names:
            references[model._meta.label] = names
    return staff, references


def build_archive(customer: Customer, *, actor) -> tuple[str, tempfile.SpooledTemporaryFile]:
    """(file name, ZIP file positioned at 0) of everything held about ``customer``."""
    with transaction.atomic():  # one snapshot of every table
        data, files = collect(customer)
    header = {"format": FORMAT, "version": VERSION, "generated_at": timezone.now().astimezone(datetime.timezone.utc)
              .isoformat(), "agency": require_agency().name, "customer": {"id": customer.pk, "name": customer.name},
              "generated_by": {"id": actor.pk, "name": actor.full_name}}
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        # Compact, so the C encoder writes it (an indented dump of a large history took seconds).
        archive.writestr("data.json", json.dumps({**header, **data}, ensure_ascii=False, separators=(",", ":")))
        for path, name in files:
            if default_storage.exists(name):
                with default_storage.open(name, "rb") as src, archive.open(path, "w") as dst:
                    while chunk := src.read(1024 * 1024):
                        dst.write(chunk)
    out.seek(0)
    stamp = timezone.localdate().strftime("%Y%m%d")
    return f"customer-{customer.pk}-data-{stamp}.zip", out


def customer_data_export(*, actor, customer: Customer, via: str) -> tuple[str, tempfile.SpooledTemporaryFile]:
    """The export, for staff allowed it; logged in the access log before it is built, so the
    archive holds its own entry."""
    from accounts.roles import Cap
    from django.core.exceptions import PermissionDenied

    if not actor.can(Cap.PERSONAL_DATA_EXPORT):
        raise PermissionDenied
    access_record(user=actor, customer=customer, what=AccessEntry.What.DATA_EXPORT, via=via)
    return build_archive(customer, actor=actor)
