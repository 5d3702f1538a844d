"""The destination knowledge base (R-CUST-10). Tables in every agency schema (the agency's own articles)
and in ``public`` (the operators' shared base, read by every agency and copied into its own).

An :class:`Article` describes a country, a region or a city in both languages, section by section; its
:class:`VisaNote` rows say what a traveler of one nationality needs to enter, with the date someone last
checked it (a note unchecked for ``STALE_AFTER_DAYS`` is flagged). :class:`Attachment` holds photos and
PDFs on the default storage (each agency's own folder), :class:`ArticleChange` who wrote and updated what.
``search_text`` is kept by ``services`` (titles, place names in English and Chinese, pinyin, tags).
"""
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.trips.models import ChecklistItem

# A visa note not checked for this many days is flagged stale (the one place this number lives).
STALE_AFTER_DAYS = 180

# The bilingual text sections of an article, in reading order: name → label.
SECTIONS = {
    "overview": _("Overview"),
    "attractions": _("Attractions"),
    "lodging": _("Lodging"),
    "transport": _("Transport"),
    "health_safety": _("Health and safety"),
    "tips": _("Our tips"),
}
LANGS = ("en", "zh")


def stale_before():
    """The date before which a visa check counts as stale."""
    return timezone.localdate() - timedelta(days=STALE_AFTER_DAYS)


class Article(models.Model):
    class Kind(models.TextChoices):
        COUNTRY = "country", _("Country")
        REGION = "region", _("Region")
        CITY = "city", _("City")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.CITY)
    country = models.CharField(_("country"), max_length=2, help_text=_("ISO 3166 two-letter code, e.g. JP."))
    region = models.CharField(_("region"), max_length=100, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True, help_text=_("English name, e.g. Tokyo."))
    iata_codes = ArrayField(models.CharField(max_length=3), verbose_name=_("airport codes"), default=list, blank=True)
    title_en = models.CharField(_("title (English)"), max_length=200, blank=True)
    title_zh = models.CharField(_("title (Chinese)"), max_length=200, blank=True)
    overview_en = models.TextField(_("overview (English)"), blank=True)
    overview_zh = models.TextField(_("overview (Chinese)"), blank=True)
    attractions_en = models.TextField(_("attractions (English)"), blank=True)
    attractions_zh = models.TextField(_("attractions (Chinese)"), blank=True)
    lodging_en = models.TextField(_("lodging (English)"), blank=True)
    lodging_zh = models.TextField(_("lodging (Chinese)"), blank=True)
    transport_en = models.TextField(_("transport (English)"), blank=True)
    transport_zh = models.TextField(_("transport (Chinese)"), blank=True)
    health_safety_en = models.TextField(_("health and safety (English)"), blank=True)
    health_safety_zh = models.TextField(_("health and safety (Chinese)"), blank=True)
    tips_en = models.TextField(_("tips (English)"), blank=True)
    tips_zh = models.TextField(_("tips (Chinese)"), blank=True)
    # Twelve months, January first: {"high": int|None, "low": int|None, "rain_mm": int|None, "note": str}.
    climate = models.JSONField(_("climate by month"), default=list, blank=True)
    tags = ArrayField(models.CharField(max_length=40), verbose_name=_("tags"), default=list, blank=True)
    # Denormalised for search: titles, place names (English, Chinese), pinyin full and initials, tags;
    # lower-cased. Kept by services.article_save.
    search_text = models.TextField(editable=False, default="")
    # In an agency: the shared (public) article this one was copied from.
    copied_from = models.IntegerField(null=True, blank=True, editable=False)
    copied_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("destination article")
        verbose_name_plural = _("destination articles")
        ordering = ["country", "region", "city", "id"]
        indexes = [
            GinIndex(name="dest_article_search_trgm", fields=["search_text"], opclasses=["gin_trgm_ops"]),
            GinIndex(name="dest_article_iata", fields=["iata_codes"]),
            models.Index(fields=["country", "city"], name="dest_article_place"),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(title_en="") | ~Q(title_zh=""), name="dest_article_has_title"),
            models.UniqueConstraint(fields=["copied_from"], condition=Q(copied_from__isnull=False),
                                    name="dest_article_copied_once"),
        ]

    def __str__(self):
        return self.title

    @property
    def title(self) -> str:
        """The title in the active language, else the other one."""
        from django.utils.translation import get_language

        zh = (get_language() or "").startswith("zh")
        first, second = (self.title_zh, self.title_en) if zh else (self.title_en, self.title_zh)
        return first or second

    def section(self, name: str) -> str:
        """A section's text in the active language, else the other one."""
        from django.utils.translation import get_language

        zh = (get_language() or "").startswith("zh")
        en_text, zh_text = getattr(self, f"{name}_en"), getattr(self, f"{name}_zh")
        return (zh_text or en_text) if zh else (en_text or zh_text)

    @property
    def is_stale(self) -> bool:
        """Some visa note of this article was never checked or not for STALE_AFTER_DAYS days."""
        return any(note.is_stale for note in self.visa_notes.all())


class VisaNote(models.Model):
    class Requirement(models.TextChoices):
        NONE = "none", _("No visa needed")
        ON_ARRIVAL = "on_arrival", _("Visa on arrival")
        E_VISA = "e_visa", _("E-visa")
        VISA = "visa", _("Visa needed")
        NOT_ALLOWED = "not_allowed", _("Entry not allowed")

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="visa_notes")
    nationality = models.CharField(_("nationality"), max_length=2, help_text=_("ISO 3166 two-letter code, e.g. CN."))
    requirement = models.CharField(_("requirement"), max_length=12, choices=Requirement.choices)
    stay_days = models.PositiveIntegerField(_("days of stay allowed"), null=True, blank=True)
    documents = ArrayField(models.CharField(max_length=12, choices=ChecklistItem.Document.choices),
                           verbose_name=_("documents"), default=list, blank=True)
    text_en = models.TextField(_("notes (English)"), blank=True)
    text_zh = models.TextField(_("notes (Chinese)"), blank=True)
    checked_on = models.DateField(_("checked on"), null=True, blank=True)
    checked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("checked by"))
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("visa note")
        verbose_name_plural = _("visa notes")
        ordering = ["nationality"]
        constraints = [models.UniqueConstraint(fields=["article", "nationality"], name="dest_visanote_one_per_nationality")]

    def __str__(self):
        return f"{self.nationality}: {self.get_requirement_display()}"

    @property
    def is_stale(self) -> bool:
        return self.checked_on is None or self.checked_on < stale_before()

    @property
    def text(self) -> str:
        from django.utils.translation import get_language

        zh = (get_language() or "").startswith("zh")
        return (self.text_zh or self.text_en) if zh else (self.text_en or self.text_zh)


class Attachment(models.Model):
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="attachments")
    # Default storage: django-tenants' TenantFileSystemStorage puts it under MEDIA_ROOT/<schema>/.
    file = models.FileField(upload_to="destinations/")
    title = models.CharField(_("title"), max_length=200, blank=True)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["uploaded_at", "id"]

    def __str__(self):
        return self.title or self.file.name

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")


class ArticleChange(models.Model):
    """Who wrote and updated what: one row per save, delete, copy, import or attachment change."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        UPDATED = "updated", _("Updated")
        COPIED = "copied", _("Copied from the shared base")
        IMPORTED = "imported", _("Imported")
        VISA_CHECKED = "visa_checked", _("Visa note checked")
        VISA_UPDATED = "visa_updated", _("Visa note updated")
        ATTACHMENT_ADDED = "attachment_added", _("Attachment added")
        ATTACHMENT_REMOVED = "attachment_removed", _("Attachment removed")

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="changes")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    fields = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    # Parameters of the change, rendered in the reader's language (e.g. {"nationality": "CN"}).
    params = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("article change")
        verbose_name_plural = _("article changes")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["article", "-at"], name="dest_change_article")]


class ArticleImport(models.Model):
    """An uploaded file of articles waiting for, or read by, the worker (``crm.destinations.import_articles``):
    no web process parses an upload (issue 18). ``report`` is ``imports.import_file``'s report once done."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Waiting for a worker")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    # Default storage: each agency's own folder (TenantFileSystemStorage); removed once the worker read it.
    file = models.FileField(upload_to="article-imports/", blank=True)
    original_name = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    report = models.JSONField(default=dict, blank=True)
    language = models.CharField(max_length=10, blank=True)  # the importer's, for the report's messages
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("article import")
        verbose_name_plural = _("article imports")
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.original_name

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
