"""Import of articles (docs/destinations.md, "Import"): Markdown files (one article each, a front-matter
header and "## Overview" / "## 概况" sections; a single .md or a .zip of them) or a spreadsheet (.csv,
.xlsx; one row per article, a column per field, optionally one visa note per row).

Every article goes through ``services.article_save`` (and ``visa_note_save``), all in one transaction: a
file with any error saves nothing, and the report names each error's file or row and field. The files
are small (``MAX_BYTES``); a zip is bounded by ``caravan.unpack`` before it is read.

No web process parses the file (issue 18): ``accept`` stores it in the agency's media as an
:class:`ArticleImport` and queues ``tasks.import_articles``, which runs ``import_file`` in a worker under
``caravan.unpack.memory_limit`` and keeps the report on the import for the page and the API to show."""
import re
import zipfile
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from caravan import unpack
from crm.customers.imports import read_rows

from . import services
from .models import Article, ArticleChange, ArticleImport

MAX_BYTES = 5 * 1024 * 1024
MAX_UNPACKED = 20 * 1024 * 1024
MAX_FILES = 500
EXTENSIONS = {".md", ".markdown", ".zip", ".csv", ".xlsx"}
TIME_LIMIT = 300  # seconds the worker may spend on one file

# Section headings (lower-case) → field. English and Chinese, a few synonyms each.
HEADINGS = {
    "overview": "overview_en", "概况": "overview_zh", "概述": "overview_zh", "简介": "overview_zh",
    "attractions": "attractions_en", "sights": "attractions_en", "景点": "attractions_zh",
    "lodging": "lodging_en", "accommodation": "lodging_en", "hotels": "lodging_en", "住宿": "lodging_zh",
    "transport": "transport_en", "getting around": "transport_en", "交通": "transport_zh",
    "health and safety": "health_safety_en", "health & safety": "health_safety_en",
    "健康与安全": "health_safety_zh", "健康和安全": "health_safety_zh", "安全": "health_safety_zh",
    "tips": "tips_en", "our tips": "tips_en", "贴士": "tips_zh", "小贴士": "tips_zh", "我们的建议": "tips_zh",
}
FRONT_FIELDS = {"kind", "country", "region", "city", "iata_codes", "iata", "title_en", "title_zh", "tags"}
VISA_COLUMNS = {"visa_nationality": "nationality", "visa_requirement": "requirement", "visa_stay_days": "stay_days",
                "visa_documents": "documents", "visa_text_en": "text_en", "visa_text_zh": "text_zh",
                "visa_checked_on": "checked_on"}


class ImportRefused(Exception):
    pass


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("gb18030", errors="replace")


def parse_markdown(source: str) -> dict:
    """An article's data from its Markdown text. Raises ValidationError for a file without a header."""
    text = source.replace("\r\n", "\n").replace("\r", "\n")
    match = re.match(r"\A\s*---\n(.*?)\n---\s*\n?(.*)\Z", text, re.S)
    if not match:
        raise ValidationError({"file": [_("The file must start with a header between two “---” lines "
                                          "(country, city, title_zh, title_en, tags).")]})
    header, body = match.groups()
    data: dict = {}
    for number, line in enumerate(header.split("\n"), start=2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if not sep or key not in FRONT_FIELDS:
            raise ValidationError({"file": [_("Header line %(line)s: “%(text)s” is not “field: value” with a known "
                                              "field.") % {"line": number, "text": line.strip()[:60]}]})
        value = value.strip().strip("[]")
        data["iata_codes" if key == "iata" else key] = value
    if "kind" not in data:
        data["kind"] = Article.Kind.CITY if data.get("city") else (
            Article.Kind.REGION if data.get("region") else Article.Kind.COUNTRY)
    field, lines = None, []
    preface = []

    def flush():
        if field:
            data[field] = (data.get(field, "") + "\n\n" + "\n".join(lines).strip()).strip()

    for line in body.split("\n"):
        heading = re.match(r"^##\s+(.+?)\s*#*\s*$", line)
        if heading:
            flush()
            name = heading.group(1).strip().lower()
            if name not in HEADINGS:
                raise ValidationError({"file": [_("Unknown section “%(name)s”.") % {"name": heading.group(1)[:60]}]})
            field, lines = HEADINGS[name], []
        elif field:
            lines.append(line)
        else:
            preface.append(line)
    flush()
    if "\n".join(preface).strip() and not data.get("overview_en") and not data.get("overview_zh"):
        lang = "zh" if re.search(r"[\u3400-\u9fff]", "\n".join(preface)) else "en"
        data[f"overview_{lang}"] = "\n".join(preface).strip()
    return data


def _row_data(row: dict) -> tuple[dict, dict | None]:
    """(article data, visa note data or None) of a spreadsheet row; columns named as the fields."""
    data, visa = {}, {}
    for header, value in row.items():
        key = str(header).strip().lower().replace(" ", "_")
        if key in VISA_COLUMNS:
            if value not in ("", None):
                visa[VISA_COLUMNS[key]] = value
        elif key == "climate":
            if value:
                import json

                try:
                    data["climate"] = json.loads(value)
                except ValueError:
                    raise ValidationError({"climate": [_("Give the climate as JSON: twelve months of "
                                                         "{\"high\", \"low\", \"rain_mm\", \"note\"}.")]}) from None
        elif key in services.EDITABLE:
            data[key] = value
        elif key == "iata":
            data["iata_codes"] = value
        elif value not in ("", None):
            raise ValidationError({key: [_("Unknown column.")]})
    return data, (visa or None)


def _existing(data: dict) -> Article | None:
    """The agency's article for the same place (kind, country, region and city), which an import updates."""
    return Article.objects.filter(
        kind=str(data.get("kind") or Article.Kind.CITY), country=str(data.get("country") or "").strip().upper(),
        region__iexact=str(data.get("region") or "").strip(), city__iexact=str(data.get("city") or "").strip(),
    ).order_by("id").first()


def _messages(exc: ValidationError) -> list[tuple[str, str]]:
    if hasattr(exc, "error_dict"):
        return [(field, str(message)) for field, errors in exc.message_dict.items() for message in errors]
    return [("", str(message)) for message in exc.messages]


def _items(path: Path, name: str):
    """(where, data or a ValidationError, visa data) for each article of the file."""
    suffix = Path(name).suffix.lower()
    if suffix in (".md", ".markdown"):
        try:
            yield name, parse_markdown(_decode(path.read_bytes())), None
        except ValidationError as exc:
            yield name, exc, None
    elif suffix == ".zip":
        try:
            unpack.check_zip(path, max_bytes=MAX_UNPACKED, read=True, max_members=MAX_FILES)
        except zipfile.BadZipFile:
            raise ValidationError({"file": [_("This is not a zip file we can read.")]}) from None
        except unpack.UnpackRefused as exc:
            raise ValidationError({"file": [str(exc)]}) from None
        with zipfile.ZipFile(path) as archive:
            members = sorted((i for i in archive.infolist() if not i.is_dir()
                              and Path(i.filename).suffix.lower() in (".md", ".markdown")
                              and not Path(i.filename).name.startswith(".")), key=lambda i: i.filename)
            if not members:
                raise ValidationError({"file": [_("The zip holds no Markdown (.md) file.")]})
            for info in members:
                try:
                    yield info.filename, parse_markdown(_decode(archive.read(info))), None
                except ValidationError as exc:
                    yield info.filename, exc, None
    else:
        _headers, rows = read_rows(path, name)
        for row in rows:
            where = _("row %(row)s") % {"row": row.number}
            try:
                data, visa = _row_data(row)
                yield where, data, visa
            except ValidationError as exc:
                yield where, exc, None


def accept(*, actor, upload) -> ArticleImport:
    """Store the upload in the agency's media and queue the worker to read it (``tasks.import_articles``):
    the web process checks only the name, the size and, for a zip, its directory (declared sizes), and
    never parses the file (issue 18). Raises ValidationError for a file refused before it is queued."""
    from .tasks import import_articles

    name = Path(getattr(upload, "name", "") or "").name
    if Path(name).suffix.lower() not in EXTENSIONS:
        raise ValidationError({"file": [_("Upload Markdown (.md), a .zip of Markdown files, .csv or .xlsx.")]})
    if (getattr(upload, "size", 0) or 0) > MAX_BYTES:
        raise ValidationError({"file": [_("The file is larger than 5 MB. Split it into several files.")]})
    job = ArticleImport(original_name=name[:255], created_by=actor,
                        language=translation.get_language() or settings.LANGUAGE_CODE)
    job.file.save("upload" + Path(name).suffix.lower(), upload, save=False)
    if Path(name).suffix.lower() == ".zip":
        try:
            unpack.check_zip(job.file.path, max_bytes=MAX_UNPACKED, max_members=MAX_FILES)
        except (zipfile.BadZipFile, unpack.UnpackRefused) as exc:
            job.file.delete(save=False)
            message = str(exc) if isinstance(exc, unpack.UnpackRefused) else _("This is not a zip file we can read.")
            raise ValidationError({"file": [message]}) from None
    job.save()
    import_articles.delay(job.pk)  # sent once the request's transaction commits (AgencyTask)
    return job


def stopped(job: ArticleImport) -> bool:
    """A job the worker took but never finished (the worker died): nothing of it was saved (one transaction)."""
    return (job.status == ArticleImport.Status.RUNNING and job.started_at is not None
            and job.started_at < timezone.now() - timedelta(seconds=TIME_LIMIT + 60))


def current(job: ArticleImport) -> ArticleImport:
    """The import as the page and the API show it: one whose worker went away is failed (nothing was saved)."""
    if stopped(job):
        with translation.override(job.language or None):
            job.report = failed_report(job.original_name, _("The worker reading this file stopped; nothing was "
                                                            "saved. Upload the file again."))
        job.status, job.finished_at = ArticleImport.Status.FAILED, timezone.now()
        ArticleImport.objects.filter(pk=job.pk, status=ArticleImport.Status.RUNNING).update(
            status=job.status, report=job.report, finished_at=job.finished_at)
    return job


def failed_report(name: str, message: str) -> dict:
    return {"created": 0, "updated": 0, "saved": False, "articles": [],
            "errors": [{"where": name, "field": "file", "message": str(message)}]}


def import_file(*, actor, path: Path, name: str) -> dict:
    """Read the stored file at ``path`` (uploaded as ``name``) and save its articles, all or nothing. Runs in
    the worker, under caravan.unpack's memory limit. Returns {"created", "updated", "errors":
    [{"where", "field", "message"}], "saved": bool, "articles": [ids]}."""
    report = {"created": 0, "updated": 0, "errors": [], "saved": False, "articles": []}
    seen: dict[tuple, str] = {}
    with transaction.atomic():
        for where, data, visa in _items(path, name):
            if isinstance(data, ValidationError):
                report["errors"] += [{"where": where, "field": f, "message": m} for f, m in _messages(data)]
                continue
            key = tuple(str(data.get(k) or "").strip().lower() for k in ("kind", "country", "region", "city"))
            if key in seen and key[3] + key[2]:
                report["errors"].append({"where": where, "field": "city", "message": _(
                    "The same place as %(other)s.") % {"other": seen[key]}})
                continue
            seen[key] = where
            existing = _existing(data)
            try:
                article = services.article_save(actor=actor, article=existing, data=data,
                                                change_kind=ArticleChange.Kind.IMPORTED)
                if visa:
                    nationality = visa.pop("nationality", "")
                    services.visa_note_save(actor=actor, article=article, nationality=nationality, data=visa)
            except ValidationError as exc:
                report["errors"] += [{"where": where, "field": f, "message": m} for f, m in _messages(exc)]
                continue
            report["updated" if existing else "created"] += 1
            report["articles"].append(article.pk)
        if report["errors"] or not report["articles"]:
            if not report["errors"]:
                report["errors"].append({"where": name, "field": "file", "message": _("The file holds no article.")})
            transaction.set_rollback(True)
            report["created"] = report["updated"] = 0
            report["articles"] = []
        else:
            report["saved"] = True
    return report
