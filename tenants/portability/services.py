"""Export, restore and deletion of an agency (R-PLAT-2; docs/portability.md). Public schema.

- ``export_request`` / ``export_run``: an archive (zip) of every table of the agency's schema, its
  rows in shared tables and its files, one CSV per table written with ``COPY … TO STDOUT`` inside
  one read-only snapshot, plus ``manifest.json`` (counts, sha256, migration state) and
  ``README.txt``. Kept ``EXPORT_RETENTION_HOURS``; ``expire_exports`` deletes older ones.
- ``export_download``: the fenced, logged download (the views decide who may ask).
- ``restore_archive``: checksums and migration state verified, the agency created through
  ``tenants.services.agency_onboard``, then every table loaded with ``COPY … FROM`` in one
  transaction (user triggers off for the load, sequences set to the highest id), shared rows given
  the new agency's id, files unpacked.
- ``deletion_schedule`` / ``deletion_cancel`` / ``purge_due`` and ``purge``: the one way an agency's
  schema, shared rows, files, cache entries and archives go (``tenants.services.agency_delete`` too).
"""
import csv
import hashlib
import io
import json
import logging
import os
import secrets
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

from caravan import leases, unpack
from tenants.models import Agency, AgencyEvent, Domain, event_text

from . import catalog
from .models import AgencyExport, AgencyRestore, JobStatus

log = logging.getLogger("caravan.portability")

FORMAT = "caravan-agency-export"
FORMAT_VERSION = 1
CHUNK = 1 << 20
MANIFEST_MAX_BYTES = 64 * 1024 * 1024  # a manifest lists tables and files: megabytes at most
MANIFEST_SALT = "caravan.portability.manifest"
# A queued or running export older than this was lost (a worker died; the task limit is 30 minutes):
# it no longer blocks a new one, and the hourly expiry job marks it failed.
STALE_AFTER = timezone.timedelta(hours=6)
# A restore drops the foreign keys and plain indexes of tables with at least this many rows and
# builds them after the load (one check per key, one sort per index, instead of row by row).
BULK_ROWS = 20_000
README = """Caravan agency export (format {format} version {version})
=================================================

Everything agency "{slug}" held on {created}: one CSV file per table, its files, and manifest.json.

schema/<table>.csv   every table of the agency's own database schema ({schema}), all rows, all columns.
public/<table>.csv   the agency's rows in tables shared by the platform (the agency itself, its domains,
                     history, billing account, its own supplier feeds and their inventory rows...).
files/...            the files the agency uploaded.
manifest.json        format version, agency, schema, creation time, the migration state of every app,
                     and for every CSV file its table, row count, columns and SHA-256 (of the file as
                     stored here); for every file its size and SHA-256.
manifest.sig         the platform's signature of manifest.json (HMAC-SHA256 with its secret key): the
                     platform restores only archives it made itself, unchanged.

CSV files are PostgreSQL COPY's CSV format (UTF-8, comma, header row with the column names, empty
unquoted field = NULL, "" = empty text). JSON columns hold JSON text. Times are ISO 8601 with offset.
Travel document numbers stay encrypted with the platform's keys; the masked number is readable.
An operator can restore this archive into Caravan: manage.py restore_agency <archive> --slug <slug>.
"""


class ArchiveRefused(ValidationError):
    """An archive that will not be restored: damaged, tampered with, or from another migration state."""


# --- export ----------------------------------------------------------------------------------------------

def export_root() -> Path:
    root = Path(settings.EXPORT_ROOT)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def _progress_key(job_id) -> str:
    return f"portability:progress:{job_id}"


def _set_progress(job_id, done: int, total: int) -> None:
    with schema_context(get_public_schema_name()):
        cache.set(_progress_key(job_id), (done, total), 3600)


def progress(job, *, key=None) -> tuple[int, int]:
    """(tables done, tables in all) of a running job, else of the finished one."""
    if job.status == JobStatus.RUNNING:
        with schema_context(get_public_schema_name()):
            live = cache.get(_progress_key(key or job.pk))
        if live:
            return live
    return job.tables_done, job.tables_total


def progress_of_restore(job) -> tuple[int, int]:
    return progress(job, key=f"restore-{job.pk}")


def export_request(*, agency: Agency, actor: str, by_operator: bool = False) -> AgencyExport:
    """Queue an export of ``agency`` (runs as platform work once the transaction commits)."""
    if agency.is_platform:
        raise ValidationError(_("The platform itself cannot be exported."))
    with schema_context(get_public_schema_name()), transaction.atomic():
        running = AgencyExport.objects.unscoped().filter(agency=agency, status__in=[JobStatus.QUEUED, JobStatus.RUNNING],
                                                         created_at__gt=timezone.now() - STALE_AFTER)
        if running.exists():
            raise ValidationError(_("An export of this agency is already being prepared."))
        export = AgencyExport.objects.unscoped().create(agency=agency, requested_by=actor, by_operator=by_operator,
                                                        **leases.offered())
        AgencyEvent.objects.unscoped().create(agency=agency, kind=AgencyEvent.Kind.EXPORT_REQUESTED, actor=actor,
                                              **event_text("agency_export", id=export.pk))
    from .tasks import export_agency

    export_agency.delay(str(export.pk))  # a PlatformTask: public schema, sent once the request commits
    return export


def _copy_out(cursor, sql: str, sink, digest) -> int:
    with cursor.copy(sql) as copy:
        for data in copy:
            digest.update(data)
            sink.write(data)
    return cursor.rowcount


def _quoted(names) -> str:
    return ", ".join(f'"{n}"' for n in names)


def write_archive(agency: Agency, path: Path, *, on_table=None) -> dict:
    """Write the agency's archive to ``path``; returns the manifest. Reads inside one snapshot."""
    schema = agency.schema_name
    outermost = not connection.in_atomic_block
    with schema_context(get_public_schema_name()), transaction.atomic():
        if outermost:  # one snapshot for every table: the archive is consistent while staff keep working
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        tables = catalog.schema_tables(schema)
        shared = catalog.shared_tables()
        total = len(tables) + len(shared) + 1
        manifest = {
            "format": FORMAT, "version": FORMAT_VERSION,
            "agency": {"id": agency.pk, "slug": agency.slug, "name": agency.name},
            "schema": schema, "created_at": timezone.now().isoformat(),
            "migrations": {"schema": catalog.migration_state(schema),
                           "public": catalog.migration_state(get_public_schema_name())},
            "tables": [], "files": [],
        }
        done = 0
        raw = connection.cursor().cursor  # psycopg's own cursor: COPY streaming
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True) as archive:
            for scope, name, cols, sql in (
                [("schema", t, c, f'COPY "{schema}"."{t}" ({_quoted(c)}) TO STDOUT WITH (FORMAT csv, HEADER true)')
                 for t, c in ((t, catalog.columns(schema, t)) for t in tables)]
                + [("public", s.name, c, f'COPY (SELECT {_quoted(c)} FROM public."{s.name}" WHERE '
                                         f'{s.condition % {"agency": int(agency.pk)}} ORDER BY 1) '
                                         f'TO STDOUT WITH (FORMAT csv, HEADER true)')
                   for s, c in ((s, catalog.columns("public", s.name)) for s in shared)]
            ):
                member = f"{scope}/{name}.csv"
                digest = hashlib.sha256()
                with archive.open(member, "w", force_zip64=True) as sink:
                    rows = _copy_out(raw, sql, sink, digest)
                manifest["tables"].append({"file": member, "scope": scope, "table": name, "rows": rows,
                                           "columns": cols, "sha256": digest.hexdigest()})
                done += 1
                if on_table:
                    on_table(done, total)
            with tenant_context(agency):
                from django.core.files.storage import default_storage

                media = Path(default_storage.path(""))
            for file in sorted(p for p in media.rglob("*") if p.is_file()) if media.is_dir() else []:
                relative = file.relative_to(media).as_posix()
                digest = hashlib.sha256()
                with open(file, "rb") as source, archive.open(f"files/{relative}", "w", force_zip64=True) as sink:
                    while data := source.read(CHUNK):
                        digest.update(data)
                        sink.write(data)
                manifest["files"].append({"path": relative, "size": file.stat().st_size, "sha256": digest.hexdigest()})
            if on_table:
                on_table(total, total)
            archive.writestr("README.txt", README.format(format=FORMAT, version=FORMAT_VERSION, slug=agency.slug,
                                                         created=manifest["created_at"], schema=schema))
            text = json.dumps(manifest, indent=1, ensure_ascii=False)
            archive.writestr("manifest.json", text)
            archive.writestr("manifest.sig", sign_manifest(text))
    return manifest


def export_run(export_id) -> AgencyExport | None:
    """Make the archive of a queued export (the Celery task's body) under the export's lease
    (caravan.leases): a message for an export another worker holds, or that ended, does nothing; an
    export whose worker died is made again from the start by the next attempt."""
    with schema_context(get_public_schema_name()):
        lease = leases.acquire(EXPORT, export_id)
        export = AgencyExport.objects.unscoped().select_related("agency").filter(pk=export_id).first()
        if lease is None or export is None:
            return export
        agency = export.agency
        if export.checkpoint.get("partial"):  # an earlier attempt's unfinished file
            (export_root() / export.checkpoint["partial"]).unlink(missing_ok=True)
        name = f"{agency.schema_name}-{secrets.token_urlsafe(24)}.zip"
        final = export_root() / name
        partial = final.with_suffix(".part")
        lease.checkpoint(status=JobStatus.RUNNING, checkpoint={"partial": partial.name})
        try:
            with lease:
                manifest = write_archive(agency, partial,
                                         on_table=lambda done, total: _set_progress(export.pk, done, total))
            os.chmod(partial, 0o600)
            digest = hashlib.sha256()
            with open(partial, "rb") as stream:
                while data := stream.read(CHUNK):
                    digest.update(data)
            partial.rename(final)
        except leases.LeaseLost:
            partial.unlink(missing_ok=True)
            raise
        except Exception as exc:
            partial.unlink(missing_ok=True)
            lease.finish(status=JobStatus.FAILED, error=repr(exc)[:2000], finished_at=timezone.now())
            log.exception("Export %s of %s failed", export.pk, agency.slug)
            raise
        total, size = len(manifest["tables"]) + 1, final.stat().st_size
        now = timezone.now()
        try:
            lease.finish(status=JobStatus.DONE, file_name=name, size=size, sha256=digest.hexdigest(),
                         tables_done=total, tables_total=total, finished_at=now, checkpoint={},
                         expires_at=now + timezone.timedelta(hours=settings.EXPORT_RETENTION_HOURS))
        except leases.LeaseLost:  # another attempt took over meanwhile: its archive counts, not this one
            final.unlink(missing_ok=True)
            raise
        log.info("Export %s of %s ready: %s tables, %s bytes", export.pk, agency.slug, total, size)
        export.refresh_from_db()
        return export


def _export_resume(pk) -> None:
    from .tasks import export_agency

    export_agency.delay(str(pk))


def _export_failed(reason: str) -> dict:
    return {"status": JobStatus.FAILED, "error": reason, "finished_at": timezone.now()}


EXPORT = leases.register(leases.Kind(name="portability.export", model="portability.AgencyExport",
                                     active={"status__in": [JobStatus.QUEUED, JobStatus.RUNNING]},
                                     resume=_export_resume, failed=_export_failed, public=True))


def export_path(export: AgencyExport) -> Path:
    return export_root() / export.file_name


def download_name(export: AgencyExport, slug: str) -> str:
    """The file name a downloaded archive is saved under (agency pages, console and operator API alike)."""
    return f"caravan-{slug}-{export.created_at:%Y%m%d-%H%M}.zip"


def export_download(*, export: AgencyExport, actor: str) -> Path:
    """The archive's path for a download the caller has already fenced; the download is logged."""
    if not export.downloadable or (export.expires_at and export.expires_at <= timezone.now()):
        raise ValidationError(_("This export is not available (not ready, or expired)."))
    path = export_path(export)
    if not path.is_file():
        raise ValidationError(_("This export is not available (not ready, or expired)."))
    with schema_context(get_public_schema_name()):
        AgencyEvent.objects.unscoped().create(agency_id=export.agency_id, kind=AgencyEvent.Kind.EXPORT_DOWNLOADED,
                                              actor=actor, **event_text("agency_export", id=export.pk))
    log.info("Export %s of agency %s downloaded by %s", export.pk, export.agency_id, actor)
    return path


def expire_exports(now=None) -> int:
    """Delete archives past their time (and stray partial files and uploads); returns archives deleted."""
    now = now or timezone.now()
    root = export_root()
    count = 0
    with schema_context(get_public_schema_name()):
        for export in AgencyExport.objects.unscoped().filter(expires_at__lte=now).exclude(status=JobStatus.EXPIRED):
            if export.file_name:
                (root / export.file_name).unlink(missing_ok=True)
            AgencyExport.objects.unscoped().filter(pk=export.pk).update(status=JobStatus.EXPIRED, file_name="")
            count += 1
        AgencyExport.objects.unscoped().filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING],
                                               created_at__lte=now - STALE_AFTER).update(
            status=JobStatus.FAILED, error="lost: not finished in time", finished_at=now)
        known = set(AgencyExport.objects.unscoped().exclude(file_name="").values_list("file_name", flat=True))
    cutoff = (now - timezone.timedelta(hours=settings.EXPORT_RETENTION_HOURS)).timestamp()
    for path in list(root.glob("*")) + list((root / "uploads").glob("*")):
        if path.is_file() and path.name not in known and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
    if count:
        log.info("%s expired export archives deleted", count)
    return count


# --- restore ---------------------------------------------------------------------------------------------

@dataclass
class Archive:
    zip: zipfile.ZipFile
    manifest: dict


def _member_name(name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not name or "\\" in name:
        raise ArchiveRefused(_("The archive names a file outside itself (%(name)s).") % {"name": name})
    return name


def sign_manifest(text: str) -> str:
    from django.core.signing import Signer

    return Signer(salt=MANIFEST_SALT, algorithm="sha256").signature(text)


def _signed(text: str, signature: str) -> bool:
    from django.core.signing import BadSignature, Signer

    try:  # Signer.unsign also tries SECRET_KEY_FALLBACKS: archives survive a key rotation
        Signer(salt=MANIFEST_SALT, algorithm="sha256").unsign(f"{text}:{signature}")
    except BadSignature:
        return False
    return True


def open_archive(path, *, trust_unsigned: bool = False) -> Archive:
    """Open an archive and verify it: signed by this platform (unless the operator trusts it anyway),
    format, every listed member present and its SHA-256 right."""
    try:
        # A bomb is refused before anything is inflated: no part may unpack to more than UPLOAD_MAX_RATIO
        # times its packed size, and the manifest, read whole, is small (caravan.unpack, issue 18).
        unpack.check_zip(path, max_bytes=1 << 62, max_members=1 << 30)
        archive = zipfile.ZipFile(path)
        if archive.getinfo("manifest.json").file_size > MANIFEST_MAX_BYTES:
            raise ArchiveRefused(_("This archive's manifest.json is larger than any Caravan export's. Refused."))
        text = archive.read("manifest.json").decode()
        manifest = json.loads(text)
    except unpack.UnpackRefused as exc:
        raise ArchiveRefused(str(exc)) from None
    except (OSError, zipfile.BadZipFile, KeyError, ValueError):
        raise ArchiveRefused(_("This is not a Caravan agency export (no readable manifest.json).")) from None
    try:
        signature = archive.read("manifest.sig").decode().strip()
    except KeyError:
        signature = ""
    if not trust_unsigned and not _signed(text, signature):
        raise ArchiveRefused(_("This archive's manifest is not signed by this Caravan platform, or was changed after "
                               "it was made. It was not restored. (An operator who trusts an archive from another "
                               "platform can restore it with --trust-unsigned.)"))
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise ArchiveRefused(_("This archive's format (%(format)s version %(version)s) is not one this Caravan reads.")
                             % {"format": manifest.get("format"), "version": manifest.get("version")})
    names = set(archive.namelist())
    listed = [(t["file"], t["sha256"]) for t in manifest.get("tables", [])]
    listed += [(f"files/{f['path']}", f["sha256"]) for f in manifest.get("files", [])]
    for member, expected in listed:
        if _member_name(member) not in names:
            raise ArchiveRefused(_("The archive is incomplete: %(name)s is missing.") % {"name": member})
        digest = hashlib.sha256()
        with archive.open(member) as stream:
            while data := stream.read(CHUNK):
                digest.update(data)
        if digest.hexdigest() != expected:
            raise ArchiveRefused(_("The archive was damaged or changed: the checksum of %(name)s does not match "
                                   "its manifest. It was not restored.") % {"name": member})
    return Archive(archive, manifest)


def _state_differences(archived: dict, current: dict) -> list[str]:
    out = []
    for app in sorted(set(archived) | set(current)):
        have, want = set(archived.get(app, [])), set(current.get(app, []))
        if have != want:
            missing, extra = sorted(want - have), sorted(have - want)
            out.append(f"{app}: " + "; ".join(
                ([f"archive lacks {', '.join(missing)}"] if missing else [])
                + ([f"archive has {', '.join(extra)} unknown here"] if extra else [])))
    return out


def _copy_in(cursor, sql: str, archive: zipfile.ZipFile, member: str) -> None:
    with cursor.copy(sql) as copy, archive.open(member) as stream:
        while data := stream.read(CHUNK):
            copy.write(data)


def restore_archive(path, *, slug: str, actor: str, name: str = "", on_table=None,
                    trust_unsigned: bool = False) -> Agency:
    """Restore an export as agency ``slug`` (new, or the slug of a deleted agency). All or nothing."""
    from tenants.services import agency_onboard, offered_plans

    archive = open_archive(path, trust_unsigned=trust_unsigned)
    manifest = archive.manifest
    source = manifest["agency"]
    tables = [t for t in manifest["tables"] if t["scope"] == "schema"]
    shared = {t["table"]: t for t in manifest["tables"] if t["scope"] == "public"}
    total = len(tables) + len(shared) + 1
    plans = offered_plans()
    agency_row = _read_single_row(archive.zip, shared.get(catalog.AGENCY_TABLE))
    plan = agency_row.get("plan") if agency_row.get("plan") in plans else next(iter(plans))
    connection.set_schema_to_public()
    media_dir = None
    try:
        with transaction.atomic():
            agency = agency_onboard(name=name or source["name"], slug=slug, plan=plan, admin_email="",
                                    language=agency_row.get("language") or "zh-hans", actor=actor, first_admin=False).agency
            schema = agency.schema_name
            AgencyEvent.objects.unscoped().filter(agency=agency, kind=AgencyEvent.Kind.ONBOARDED).delete()
            differences = _state_differences(manifest["migrations"]["schema"], catalog.migration_state(schema))
            if differences:
                raise ArchiveRefused(_("This archive was made at another migration state than this version of Caravan, "
                                       "so it cannot be restored here: %(details)s. Restore it with the Caravan "
                                       "version that made it.") % {"details": " | ".join(differences)})
            present = set(catalog.schema_tables(schema))
            if present != {t["table"] for t in tables}:
                raise ArchiveRefused(_("The archive's tables differ from this Caravan's: %(details)s.") % {"details": ", ".join(
                    sorted(present ^ {t["table"] for t in tables}))})
            for entry in manifest["tables"]:
                want = catalog.columns(schema if entry["scope"] == "schema" else "public", entry["table"])
                if entry["columns"] != want:
                    raise ArchiveRefused(_("The columns of %(table)s in the archive differ from this Caravan's.")
                                         % {"table": entry["table"]})
            done = 0
            raw = connection.cursor().cursor
            with connection.cursor() as cursor:
                # Foreign keys go for the load and come back after it, each checked by one query
                # (as pg_restore does) instead of row by row; checks pending from onboarding run first.
                # Only on big tables (BULK_ROWS): on small ones dropping and adding back costs more.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                big = {t["table"] for t in tables if t["rows"] >= BULK_ROWS}
                keys = [k for k in catalog.foreign_keys(schema) if k[0] in big]
                for table, constraint, _definition in keys:
                    cursor.execute(f'ALTER TABLE "{schema}"."{table}" DROP CONSTRAINT "{constraint}"')
                indexes = [i for i in catalog.plain_indexes(schema) if i[0] in big]  # built after the load
                for _table, index, _definition in indexes:
                    cursor.execute(f'DROP INDEX "{schema}"."{index}"')
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # the other keys: checked after the load
                for table in sorted(present):  # what onboarding wrote (content types, migration records…)
                    cursor.execute(f'DELETE FROM "{schema}"."{table}"')
                triggered = catalog.tables_with_user_triggers(schema)
                for table in triggered:  # e.g. the TripSummary triggers: the archive has the summary rows
                    cursor.execute(f'ALTER TABLE "{schema}"."{table}" DISABLE TRIGGER USER')
                for entry in tables:
                    _copy_in(raw, f'COPY "{schema}"."{entry["table"]}" ({_quoted(entry["columns"])}) '
                                  f'FROM STDIN WITH (FORMAT csv, HEADER true)', archive.zip, entry["file"])
                    done += 1
                    if on_table:
                        on_table(done, total)
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # (no ALTER TABLE while checks are pending)
                for table in triggered:
                    cursor.execute(f'ALTER TABLE "{schema}"."{table}" ENABLE TRIGGER USER')
                for _table, _index, definition in indexes:
                    cursor.execute(definition)
                for table, constraint, definition in keys:
                    cursor.execute(f'ALTER TABLE "{schema}"."{table}" ADD CONSTRAINT "{constraint}" {definition}')
                for sequence, table, column in catalog.sequences(schema):
                    cursor.execute(f'SELECT setval(\'"{schema}"."{sequence}"\', COALESCE(MAX("{column}"), 1), '
                                   f'MAX("{column}") IS NOT NULL) FROM "{schema}"."{table}"')
            _restore_shared(archive, agency, source, shared, raw, keep_name=bool(name))
            done += len(shared)
            if schema != manifest["schema"]:
                _rehash_documents(agency)
            if Agency.objects.filter(pk=source["id"], slug=source["slug"]).exists():
                _detach_from_original(agency)
            AgencyEvent.objects.unscoped().create(
                agency=agency, kind=AgencyEvent.Kind.RESTORED, actor=actor,
                **event_text("agency_restored", slug=source["slug"], at=manifest["created_at"]))
            media_dir = _restore_files(archive, agency)
            if on_table:
                on_table(total, total)
    except BaseException:
        if media_dir is not None:
            shutil.rmtree(media_dir, ignore_errors=True)
        raise
    finally:
        archive.zip.close()
        connection.set_schema_to_public()
    agency = Agency.objects.get(pk=agency.pk)
    with tenant_context(agency):
        cache.delete_pattern("*")
    log.info("Agency %s restored by %s from the export of %s", agency.slug, actor, source["slug"])
    return agency


def _read_single_row(archive: zipfile.ZipFile, entry) -> dict:
    if not entry:
        return {}
    with archive.open(entry["file"]) as stream:
        rows = list(csv.DictReader(io.TextIOWrapper(stream, encoding="utf-8")))
    return rows[0] if rows else {}


def _restore_shared(archive: Archive, agency: Agency, source: dict, shared: dict, raw, *, keep_name: bool) -> None:
    """Shared rows with the new agency's id; their own ids from the table's sequence, and keys between
    them followed. The agency row updates the onboarded one; domains other than the old address are
    added when free; a unique text value already in use (a feed's push key) gets a fresh one."""
    by_name = {t.name: t for t in catalog.shared_tables()}
    maps: dict[str, str] = {}
    with connection.cursor() as cursor:
        for table in [t for t in by_name.values() if t.name in shared]:
            entry = shared[table.name]
            cols = entry["columns"]
            temp = f"_restore_{table.name}"[:63]
            cursor.execute(f'CREATE TEMP TABLE "{temp}" (LIKE public."{table.name}") ON COMMIT DROP')
            _copy_in(raw, f'COPY "{temp}" ({_quoted(cols)}) FROM STDIN WITH (FORMAT csv, HEADER true)',
                     archive.zip, entry["file"])
            if table.name == catalog.AGENCY_TABLE:
                keep = [c for c in cols if c not in ("id", "schema_name", "slug", "status", "deletion_due_at")
                        and not (keep_name and c == "name")]
                cursor.execute(f'UPDATE public."{table.name}" a SET {", ".join(f"{_q(c)} = r.{_q(c)}" for c in keep)}, '
                               f"status = CASE WHEN r.status = 'deletion_scheduled' THEN 'suspended' ELSE r.status END "
                               f'FROM "{temp}" r WHERE a.id = %s', [agency.pk])
                continue
            if table.name == Domain._meta.db_table:
                old = f"{source['slug']}.{settings.PLATFORM_DOMAIN}"
                cursor.execute(f'DELETE FROM "{temp}" r WHERE r.domain = %s OR EXISTS '
                               f'(SELECT 1 FROM public."{table.name}" d WHERE d.domain = r.domain)', [old])
                cursor.execute(f'UPDATE "{temp}" SET is_primary = false')
            key_columns = {k.column: k for k in table.keys}
            pk = _primary_key(table.name)
            sequence = _sequence(table.name, pk) if pk else None
            joins, exprs = [], []
            if sequence:
                maps[table.name] = f"_map_{table.name}"[:63]
                cursor.execute(f'CREATE TEMP TABLE "{maps[table.name]}" ON COMMIT DROP AS '
                               f'SELECT {_q(pk)} AS old, nextval(%s) AS new FROM "{temp}"', [sequence])
                joins.append(f'JOIN "{maps[table.name]}" m ON m.old = r.{_q(pk)}')
            unique = _unique_text_columns(table.name)
            for i, col in enumerate(cols):
                key = key_columns.get(col)
                if col == pk and sequence:
                    exprs.append("m.new")
                elif key and key.target == catalog.AGENCY_TABLE:
                    exprs.append(f"CASE WHEN r.{_q(col)} IS NULL THEN NULL ELSE {int(agency.pk)} END")
                elif key and key.target in maps:
                    joins.append(f'LEFT JOIN "{maps[key.target]}" m{i} ON m{i}.old = r.{_q(col)}')
                    exprs.append(f"m{i}.new")
                elif col in unique:
                    exprs.append(f"CASE WHEN EXISTS (SELECT 1 FROM public.\"{table.name}\" x WHERE x.{_q(col)} = "
                                 f"r.{_q(col)}) THEN substr(md5(random()::text || clock_timestamp()::text), 1, 24) "
                                 f"ELSE r.{_q(col)} END")
                else:
                    exprs.append(f"r.{_q(col)}")
            cursor.execute(f'INSERT INTO public."{table.name}" ({_quoted(cols)}) SELECT {", ".join(exprs)} '
                           f'FROM "{temp}" r {" ".join(joins)}')
    agency.refresh_from_db()
    agency.save(update_fields=["status"])  # a save: the host cache hears of it (tenants.signals)


def _q(name: str) -> str:
    return f'"{name}"'


def _primary_key(table: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("""SELECT a.attname FROM pg_constraint k JOIN pg_attribute a
                          ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
                          WHERE k.conrelid = %s::regclass AND k.contype = 'p' AND array_length(k.conkey, 1) = 1""",
                       [f'public."{table}"'])
        row = cursor.fetchone()
    return row[0] if row else None


def _sequence(table: str, column: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [f'public."{table}"', column])
        return cursor.fetchone()[0]


def _unique_text_columns(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("""SELECT a.attname FROM pg_index i JOIN pg_attribute a
                          ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                          WHERE i.indrelid = %s::regclass AND i.indisunique AND NOT i.indisprimary AND i.indnatts = 1
                                AND a.atttypid IN ('text'::regtype, 'varchar'::regtype)""", [f'public."{table}"'])
        return {row[0] for row in cursor.fetchall()}


def _detach_from_original(agency: Agency) -> None:
    """A copy restored beside its still existing original must not share the original's Stripe
    customer and subscription (webhooks find an agency by them): it starts without a subscription."""
    from billing.models import BillingAccount

    BillingAccount.objects.unscoped().filter(agency=agency).update(
        stripe_customer_id="", stripe_subscription_id="", stripe_status="", current_period_end=None,
        cancel_at_period_end=False, past_due_since=None)


def _rehash_documents(agency: Agency) -> None:
    """Document lookup hashes are keyed with the schema name (crm.customers.crypto): recompute them under the new one."""
    from crm.customers import crypto
    from crm.customers.models import TravelDocument

    with tenant_context(agency):
        documents = list(TravelDocument.objects.only("pk", "kind", "issuing_country", "number_encrypted"))
        for document in documents:
            clean = crypto.decrypt(document.number_encrypted)
            document.number_hash = crypto.lookup_hash(f"{document.kind}:{document.issuing_country}:{clean}")
            document.tail_hash = crypto.lookup_hash("tail:" + clean[-4:])
        TravelDocument.objects.bulk_update(documents, ["number_hash", "tail_hash"], batch_size=1000)
    connection.set_schema_to_public()


def _restore_files(archive: Archive, agency: Agency) -> Path | None:
    files = archive.manifest.get("files", [])
    if not files:
        return None
    with tenant_context(agency):
        from django.core.files.storage import default_storage

        media = Path(default_storage.path(""))
    connection.set_schema_to_public()
    media.mkdir(parents=True, exist_ok=True)
    for entry in files:
        target = media / _member_name(entry["path"])
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.zip.open(f"files/{entry['path']}") as source, open(target, "wb") as sink:
            shutil.copyfileobj(source, sink, CHUNK)
    return media


def restore_request(*, upload, slug: str, name: str, actor: str, trust_unsigned: bool = False) -> AgencyRestore:
    """Keep an uploaded archive privately and queue its restore (the console's form)."""
    from tenants.models import validate_slug

    slug = (slug or "").strip().lower()
    try:
        validate_slug(slug)
    except ValidationError as exc:
        raise ValidationError({"slug": exc.messages}) from None
    if Agency.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": [_("An agency with this slug already exists.")]})
    folder = export_root() / "uploads"
    folder.mkdir(exist_ok=True, mode=0o700)
    path = folder / f"{secrets.token_urlsafe(24)}.zip"
    with open(path, "wb") as sink:
        for chunk in upload.chunks():
            sink.write(chunk)
    job = AgencyRestore.objects.create(slug=slug, archive=str(path), requested_by=actor)
    from .tasks import restore_agency

    restore_agency.delay(job.pk, name, trust_unsigned)  # a PlatformTask: sent once the job row commits
    return job


def _operator_language(email: str) -> str:
    from accounts.models import User

    with schema_context(get_public_schema_name()):
        language = User.objects.filter(email=email).values_list("language", flat=True).first()
    return language or settings.LANGUAGE_CODE


def restore_run(job_id: int, name: str = "", trust_unsigned: bool = False) -> AgencyRestore | None:
    claimed = AgencyRestore.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(status=JobStatus.RUNNING)
    job = AgencyRestore.objects.filter(pk=job_id).first()
    if not claimed or job is None:
        return job
    try:
        # A refusal is stored as text: write it in the language of the operator who asked.
        with translation.override(_operator_language(job.requested_by)):
            restore_archive(job.archive, slug=job.slug, actor=job.requested_by, name=name,
                            trust_unsigned=trust_unsigned,
                            on_table=lambda done, total: _set_progress(f"restore-{job.pk}", done, total))
    except ValidationError as exc:
        AgencyRestore.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error=" ".join(exc.messages),
                                                       finished_at=timezone.now())
    except Exception as exc:
        AgencyRestore.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error=repr(exc)[:2000],
                                                       finished_at=timezone.now())
        raise
    else:
        Path(job.archive).unlink(missing_ok=True)
        AgencyRestore.objects.filter(pk=job.pk).update(status=JobStatus.DONE, finished_at=timezone.now())
    job.refresh_from_db()
    return job


# --- deletion ------------------------------------------------------------------------------------------

def deletion_schedule(*, agency: Agency, actor: str, note: str = "") -> Agency:
    """Suspended → scheduled for deletion in AGENCY_DELETION_GRACE_DAYS; the admins are told and offered
    the export."""
    if agency.is_platform:
        raise ValidationError(_("The platform itself cannot be deleted."))
    if agency.status != Agency.Status.SUSPENDED:
        raise ValidationError(_("Suspend the agency before scheduling its deletion."))
    due = timezone.now() + timezone.timedelta(days=settings.AGENCY_DELETION_GRACE_DAYS)
    with schema_context(get_public_schema_name()), transaction.atomic():
        agency.status, agency.deletion_due_at = Agency.Status.DELETION_SCHEDULED, due
        agency.save(update_fields=["status", "deletion_due_at"])
        AgencyEvent.objects.unscoped().create(agency=agency, kind=AgencyEvent.Kind.DELETION_SCHEDULED, actor=actor,
                                              **event_text("agency_deletion_due", due=f"{due:%Y-%m-%d}", note=(note or "").strip()))
        from .tasks import deletion_notice

        deletion_notice.delay(agency.pk)  # a PlatformTask: sent once the schedule commits
    return agency


def deletion_notice(agency: Agency) -> int:
    """E-mail the agency's active admins: when it will be deleted, and where to download an export."""
    from accounts.models import User
    from accounts.roles import Role
    from caravan.mail import mail_each

    if agency.status != Agency.Status.DELETION_SCHEDULED:
        return 0
    with tenant_context(agency):
        admins = list(User.objects.filter(is_active=True, role=Role.ADMIN))
        sent = mail_each(admins, template="portability/deletion_scheduled", agency=agency,
                         context={"due": agency.deletion_due_at, "export_url": agency.url("/settings/export/")})
    connection.set_schema_to_public()
    return sent


def deletion_cancel(*, agency: Agency, actor: str, note: str = "") -> Agency:
    """Back to suspended; the operator reactivates when the agency may work again."""
    if agency.status != Agency.Status.DELETION_SCHEDULED:
        raise ValidationError(_("This agency is not scheduled for deletion."))
    with schema_context(get_public_schema_name()), transaction.atomic():
        agency.status, agency.deletion_due_at = Agency.Status.SUSPENDED, None
        agency.save(update_fields=["status", "deletion_due_at"])
        AgencyEvent.objects.unscoped().create(agency=agency, kind=AgencyEvent.Kind.DELETION_CANCELLED, actor=actor,
                                              note=note)
    return agency


def purge_due(now=None) -> list[str]:
    """The daily job: purge every agency whose deletion is due. Returns their slugs."""
    now = now or timezone.now()
    purged = []
    with schema_context(get_public_schema_name()):
        due = list(Agency.objects.agencies().filter(status=Agency.Status.DELETION_SCHEDULED, deletion_due_at__lte=now))
    for agency in due:
        purge(agency=agency, actor="system")
        purged.append(agency.slug)
    return purged


def purge(*, agency: Agency, actor: str) -> None:
    """Drop everything of the agency, set-based: its schema, every shared row keyed by it (found in the
    catalogue, children first), its export archives and restore records, then its files and cache
    entries. One transaction for the database; files and cache after it commits."""
    from caravan.tenancy.middleware import forget_hosts

    if agency.is_platform:
        raise ValidationError(_("The platform itself cannot be deleted."))
    schema = agency.schema_name
    with schema_context(get_public_schema_name()), transaction.atomic():
        hosts = list(Domain.objects.filter(tenant_id=agency.pk).values_list("domain", flat=True))
        archives = list(AgencyExport.objects.unscoped().filter(agency_id=agency.pk).exclude(file_name="")
                        .values_list("file_name", flat=True))
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM tenants_agency WHERE id = %s FOR UPDATE", [agency.pk])
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # deferred checks of this transaction first
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            cursor.execute("DELETE FROM portability_agencyexport WHERE agency_id = %s", [agency.pk])
            cursor.execute("DELETE FROM portability_agencyrestore WHERE slug = %s", [agency.slug])
            for table in reversed(catalog.shared_tables()):  # children before the rows they point to
                cursor.execute(f'DELETE FROM public."{table.name}" WHERE {table.condition}', {"agency": agency.pk})
        forget_hosts(hosts)
    root = export_root()
    for name in archives:
        (root / name).unlink(missing_ok=True)
    for stray in root.glob(f"{schema}-*"):
        stray.unlink(missing_ok=True)
    with tenant_context(agency):
        from django.core.files.storage import default_storage

        shutil.rmtree(default_storage.path(""), ignore_errors=True)  # MEDIA_ROOT/<schema>/
        cache.delete_pattern("*")
    connection.set_schema_to_public()
    log.info("Agency %s (%s) purged by %s", agency.slug, schema, actor)
