"""Every write to the destination knowledge base: articles (create, update, delete, copy from the shared
base, import), visa notes and attachments. Each records an :class:`ArticleChange` (who changed what) and
keeps ``search_text``. Errors are ``ValidationError``s keyed by field, for pages and the API alike.

The same functions write the operators' shared base: the console calls them with ``public`` active."""
import re
from pathlib import Path
from uuid import uuid4

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name, schema_context

from crm.trips.models import ChecklistItem

from . import reference, text
from .models import LANGS, SECTIONS, Article, ArticleChange, Attachment, VisaNote

TITLE_MAX = 200
SECTION_MAX = 50_000
TAG_MAX = 40
TAGS_MAX = 30
NOTE_MAX = 200
ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
# Content types we accept, recognised by the file's first bytes (never by its name or the browser's word).
ATTACHMENT_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
                    "application/pdf": ".pdf"}

TEXT_FIELDS = ["title_en", "title_zh"] + [f"{s}_{lang}" for s in SECTIONS for lang in LANGS]
EDITABLE = ["kind", "country", "region", "city", "iata_codes", *TEXT_FIELDS, "climate", "tags"]
COPIED = EDITABLE  # what a copy of a shared article takes over


# --- validation ------------------------------------------------------------------------------------

def _clean_country(value, field: str, errors: dict) -> str:
    code = str(value or "").strip().upper()
    if not code:
        errors.setdefault(field, []).append(_("This field is required."))
    elif reference.country(code) is None:
        errors.setdefault(field, []).append(_("“%(code)s” is not an ISO 3166 country code.") % {"code": code})
    return code


def _clean_int(value, field: str, month: int, errors: dict, low: int, high: int):
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or not low <= number <= high:
        errors.setdefault("climate", []).append(
            _("Month %(month)s: %(field)s must be a whole number from %(low)s to %(high)s.")
            % {"month": month, "field": field, "low": low, "high": high})
        return None
    return number


def clean_climate(value, errors: dict) -> list[dict]:
    """Twelve months of {"high", "low", "rain_mm", "note"}, or an empty list."""
    if value in (None, "", []):
        return []
    if not isinstance(value, list) or len(value) != 12 or not all(isinstance(m, dict) for m in value):
        errors.setdefault("climate", []).append(_("Give the climate as twelve months, January first."))
        return []
    months = []
    for number, month in enumerate(value, start=1):
        note = str(month.get("note") or "").strip()
        if len(note) > NOTE_MAX:
            errors.setdefault("climate", []).append(
                _("Month %(month)s: the note is longer than %(max)s characters.") % {"month": number, "max": NOTE_MAX})
        months.append({
            "high": _clean_int(month.get("high"), "high", number, errors, -90, 60),
            "low": _clean_int(month.get("low"), "low", number, errors, -90, 60),
            "rain_mm": _clean_int(month.get("rain_mm"), "rain_mm", number, errors, 0, 5000),
            "note": note[:NOTE_MAX],
        })
    if all(m == {"high": None, "low": None, "rain_mm": None, "note": ""} for m in months):
        return []
    return months


def _as_list(value) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [v for v in re.split(r"[,，、;；\s]+", value) if v]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)]


def clean_article(data: dict, current: dict) -> dict:
    """The validated values of an article: ``current`` (field → value) updated with ``data``. Raises a
    field-keyed ValidationError."""
    unknown = sorted(set(data) - set(EDITABLE))
    if unknown:
        raise ValidationError({name: [_("Unknown field.")] for name in unknown})
    values = {**current, **data}
    errors: dict[str, list] = {}
    cleaned: dict = {}
    kind = str(values.get("kind") or Article.Kind.CITY)
    if kind not in Article.Kind.values:
        errors["kind"] = [_("Choose country, region or city.")]
    cleaned["kind"] = kind
    cleaned["country"] = _clean_country(values.get("country"), "country", errors)
    for name, limit in (("region", 100), ("city", 100)):
        value = str(values.get(name) or "").strip()
        if len(value) > limit:
            errors.setdefault(name, []).append(_("At most %(max)s characters.") % {"max": limit})
        cleaned[name] = value
    if kind == Article.Kind.CITY and not cleaned["city"]:
        errors.setdefault("city", []).append(_("A city article names its city."))
    if kind == Article.Kind.REGION and not cleaned["region"]:
        errors.setdefault("region", []).append(_("A region article names its region."))
    codes = []
    for code in _as_list(values.get("iata_codes")):
        code = code.strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", code):
            errors.setdefault("iata_codes", []).append(_("“%(code)s” is not a three-letter airport code.") % {"code": code})
        elif code not in codes:
            codes.append(code)
    cleaned["iata_codes"] = codes
    for name in TEXT_FIELDS:
        value = str(values.get(name) or "").strip()
        limit = TITLE_MAX if name.startswith("title_") else SECTION_MAX
        if len(value) > limit:
            errors.setdefault(name, []).append(_("At most %(max)s characters.") % {"max": limit})
        cleaned[name] = value.replace("\x00", "")
    if not cleaned["title_en"] and not cleaned["title_zh"]:
        errors.setdefault("title_en", []).append(_("Give a title in English or Chinese."))
    tags = []
    for tag in _as_list(values.get("tags")):
        tag = tag.strip()
        if len(tag) > TAG_MAX:
            errors.setdefault("tags", []).append(_("A tag has at most %(max)s characters.") % {"max": TAG_MAX})
        elif tag and tag not in tags:
            tags.append(tag)
    if len(tags) > TAGS_MAX:
        errors.setdefault("tags", []).append(_("At most %(max)s tags.") % {"max": TAGS_MAX})
    cleaned["tags"] = tags
    cleaned["climate"] = clean_climate(values.get("climate"), errors)
    if errors:
        raise ValidationError(errors)
    return cleaned


def _values(article: Article | None) -> dict:
    if article is None:
        return {}
    return {name: getattr(article, name) for name in EDITABLE}


def _record(article: Article, actor, kind: str, fields=(), **params) -> ArticleChange:
    return ArticleChange.objects.create(article=article, actor=actor if getattr(actor, "pk", None) else None,
                                        kind=kind, fields=list(fields), params=params)


# --- articles --------------------------------------------------------------------------------------

@transaction.atomic
def article_save(*, actor, article: Article | None, data: dict, change_kind: str | None = None) -> Article:
    """Create (``article`` None) or update an article with ``data`` (field → value; fields left out keep
    their value). Validates, keeps ``search_text``, records who changed which fields."""
    before = _values(article)
    cleaned = clean_article(data, before)
    creating = article is None
    if creating:
        article = Article(created_by=actor if getattr(actor, "pk", None) else None)
    changed = [name for name in EDITABLE if before.get(name) != cleaned[name]]
    if not creating and not changed:
        return article
    for name, value in cleaned.items():
        setattr(article, name, value)
    article.search_text = text.search_text(article)
    article.updated_by = actor if getattr(actor, "pk", None) else None
    article.updated_at = timezone.now()
    article.save()
    kind = change_kind or (ArticleChange.Kind.CREATED if creating else ArticleChange.Kind.UPDATED)
    _record(article, actor, kind, [] if creating else changed)
    return article


def article_delete(*, actor, article: Article) -> None:
    """Delete an article with its visa notes, attachments (files too, once committed) and history."""
    names = list(article.attachments.values_list("file", flat=True))
    with transaction.atomic():
        article.delete()
        transaction.on_commit(lambda: [default_storage.delete(name) for name in names if name])


# --- visa notes ------------------------------------------------------------------------------------

VISA_FIELDS = ["requirement", "stay_days", "documents", "text_en", "text_zh", "checked", "checked_on"]


@transaction.atomic
def visa_note_save(*, actor, article: Article, nationality: str, data: dict) -> VisaNote:
    """Create or update the article's visa note for ``nationality``. ``data["checked"]`` true means the
    writer has just checked it: ``checked_on`` becomes today (or ``data["checked_on"]``, a date, e.g. an
    import's) and ``checked_by`` the actor."""
    errors: dict[str, list] = {}
    unknown = sorted(set(data) - set(VISA_FIELDS))
    for name in unknown:
        errors[name] = [_("Unknown field.")]
    code = _clean_country(nationality, "nationality", errors)
    note = VisaNote.objects.filter(article=article, nationality=code).first() if code else None
    creating = note is None
    if creating:
        note = VisaNote(article=article, nationality=code)
    requirement = data.get("requirement", note.requirement if not creating else "")
    if requirement not in VisaNote.Requirement.values:
        errors["requirement"] = [_("Choose one of the listed requirements.")]
    stay = data.get("stay_days", note.stay_days)
    if stay in ("", None):
        stay = None
    else:
        try:
            stay = int(stay)
            if isinstance(data.get("stay_days"), bool) or not 0 < stay <= 3650:
                raise ValueError
        except (TypeError, ValueError):
            errors["stay_days"] = [_("Give the days of stay as a whole number from 1 to 3650.")]
            stay = None
    documents = []
    for document in _as_list(data.get("documents", note.documents)):
        if document not in ChecklistItem.Document.values:
            errors.setdefault("documents", []).append(_("“%(value)s” is not a checklist document.") % {"value": document})
        elif document not in documents:
            documents.append(document)
    texts = {}
    for name in ("text_en", "text_zh"):
        value = str(data.get(name, getattr(note, name)) or "").strip()
        if len(value) > SECTION_MAX:
            errors[name] = [_("At most %(max)s characters.") % {"max": SECTION_MAX}]
        texts[name] = value
    checked_on = data.get("checked_on")
    if checked_on and not hasattr(checked_on, "year"):
        from django.utils.dateparse import parse_date

        try:
            checked_on = parse_date(str(checked_on))
        except ValueError:
            checked_on = None
        if checked_on is None:
            errors["checked_on"] = [_("Give the date as YYYY-MM-DD.")]
    if checked_on and checked_on > timezone.localdate():
        errors["checked_on"] = [_("The date of a check cannot be in the future.")]
    if errors:
        raise ValidationError(errors)
    before = {"requirement": note.requirement, "stay_days": note.stay_days, "documents": list(note.documents or []),
              "text_en": note.text_en, "text_zh": note.text_zh}
    after = {"requirement": requirement, "stay_days": stay, "documents": documents, **texts}
    changed = [name for name in after if before[name] != after[name]] if not creating else list(after)
    for name, value in after.items():
        setattr(note, name, value)
    checked = bool(data.get("checked")) or bool(checked_on)
    if checked:
        note.checked_on = checked_on or timezone.localdate()
        note.checked_by = actor if getattr(actor, "pk", None) else None
    if not changed and not checked:
        return note
    note.updated_at = timezone.now()
    note.save()
    kind = ArticleChange.Kind.VISA_CHECKED if checked else ArticleChange.Kind.VISA_UPDATED
    _record(article, actor, kind, changed, nationality=code)
    return note


@transaction.atomic
def visa_note_delete(*, actor, note: VisaNote) -> None:
    _record(note.article, actor, ArticleChange.Kind.VISA_UPDATED, ["deleted"], nationality=note.nationality)
    note.delete()


# --- attachments -----------------------------------------------------------------------------------

def sniff_type(head: bytes) -> str | None:
    """The content type of a photo or PDF from its first bytes, or None for anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def attachment_add(*, actor, article: Article, upload, title: str = "") -> Attachment:
    """Store a photo (JPEG, PNG, GIF, WebP) or PDF of at most 10 MB with the article, in the active
    schema's own media folder."""
    size = getattr(upload, "size", None) or 0
    if size > ATTACHMENT_MAX_BYTES:
        raise ValidationError({"file": [_("The file is larger than 10 MB.")]})
    if size == 0:
        raise ValidationError({"file": [_("The file is empty.")]})
    upload.seek(0)
    content_type = sniff_type(upload.read(16))
    upload.seek(0)
    if content_type is None:
        raise ValidationError({"file": [_("Attach a photo (JPEG, PNG, GIF, WebP) or a PDF.")]})
    title = (title or "").strip() or Path(getattr(upload, "name", "") or "").stem
    if len(title) > TITLE_MAX:
        raise ValidationError({"title": [_("At most %(max)s characters.") % {"max": TITLE_MAX}]})
    name = f"{uuid4().hex}{ATTACHMENT_TYPES[content_type]}"
    attachment = Attachment(article=article, title=title[:TITLE_MAX], content_type=content_type, size=size,
                            uploaded_by=actor if getattr(actor, "pk", None) else None)
    attachment.file.save(name, upload, save=False)
    try:
        with transaction.atomic():
            attachment.save()
            _record(article, actor, ArticleChange.Kind.ATTACHMENT_ADDED, title=attachment.title)
    except BaseException:
        default_storage.delete(attachment.file.name)
        raise
    return attachment


def attachment_remove(*, actor, attachment: Attachment) -> None:
    name = attachment.file.name
    with transaction.atomic():
        _record(attachment.article, actor, ArticleChange.Kind.ATTACHMENT_REMOVED, title=attachment.title)
        attachment.delete()
        transaction.on_commit(lambda: default_storage.delete(name))


# --- the shared base -------------------------------------------------------------------------------

def _read_shared(shared_id: int):
    """(fields, visa notes, attachments as (title, content type, bytes)) of a shared article, or None."""
    with schema_context(get_public_schema_name()):
        shared = Article.objects.filter(pk=shared_id).first()
        if shared is None:
            return None
        notes = [{"nationality": n.nationality, "requirement": n.requirement, "stay_days": n.stay_days,
                  "documents": list(n.documents), "text_en": n.text_en, "text_zh": n.text_zh,
                  "checked_on": n.checked_on} for n in shared.visa_notes.all()]
        files = []
        for attachment in shared.attachments.all():
            try:
                with attachment.file.open("rb") as handle:
                    files.append((attachment.title, attachment.file.name, handle.read(ATTACHMENT_MAX_BYTES + 1)))
            except OSError:
                continue  # a file gone from the shared base's folder is not copied
        return _values(shared), notes, files


class AlreadyCopied(ValidationError):
    """The agency already has a copy of this shared article (``copy_id``)."""

    def __init__(self, copy_id: int):
        super().__init__({"shared": [_("This article is already in your knowledge base; update your copy "
                                       "from the shared base instead.")]})
        self.copy_id = copy_id
        self.conflict = {"copy_id": copy_id}  # the API answers 409 naming the copy (caravan.api.errors)


def _require_agency():
    from caravan.tenancy import require_agency

    return require_agency()


@transaction.atomic
def article_copy_shared(*, actor, shared_id: int) -> Article:
    """Copy an article of the operators' shared base, with its visa notes and attachments, into the active
    agency. A second copy of the same article is refused (:class:`AlreadyCopied`): update the copy
    with :func:`article_update_from_shared`."""
    _require_agency()
    existing = Article.objects.filter(copied_from=shared_id).values_list("pk", flat=True).first()
    if existing:
        raise AlreadyCopied(existing)
    read = _read_shared(shared_id)
    if read is None:
        raise ValidationError({"shared": [_("There is no such article in the shared base.")]})
    fields, notes, files = read
    article = article_save(actor=actor, article=None, data=fields, change_kind=ArticleChange.Kind.COPIED)
    Article.objects.filter(pk=article.pk).update(copied_from=shared_id, copied_at=timezone.now())
    article.copied_from, article.copied_at = shared_id, timezone.now()
    for note in notes:
        VisaNote.objects.create(article=article, **note)
    for title, name, content in files:
        if len(content) <= ATTACHMENT_MAX_BYTES and sniff_type(content[:16]):
            upload = ContentFile(content, name=Path(name).name)
            attachment_add(actor=actor, article=article, upload=upload, title=title)
    return article


@transaction.atomic
def article_update_from_shared(*, actor, article: Article) -> Article:
    """Overwrite a copy with the shared article's current text and visa notes (attachments stay)."""
    _require_agency()
    if article.copied_from is None:
        raise ValidationError({"shared": [_("This article was not copied from the shared base.")]})
    read = _read_shared(article.copied_from)
    if read is None:
        raise ValidationError({"shared": [_("The shared article this was copied from no longer exists.")]})
    fields, notes, _files = read
    article = article_save(actor=actor, article=article, data=fields, change_kind=ArticleChange.Kind.COPIED)
    for note in notes:
        VisaNote.objects.update_or_create(article=article, nationality=note["nationality"],
                                          defaults={k: v for k, v in note.items() if k != "nationality"})
    Article.objects.filter(pk=article.pk).update(copied_at=timezone.now())
    return article


def import_articles(*, actor, upload):
    """Queue an import of articles from Markdown (.md, or a .zip of .md files) or a spreadsheet (.csv, .xlsx);
    see ``imports``. Returns the :class:`ArticleImport`, which a worker reads (never this process). All or
    nothing: its report lists every error and nothing is saved if there is one."""
    from .imports import accept

    return accept(actor=actor, upload=upload)
