"""The destination knowledge base's pages (R-CUST-10): the list with live search and tags, an article in
the reader's language first (the other one a click away), its climate, visa notes per nationality with
"mark checked", attachments served through a fenced view, history; the create/edit form, the operators'
shared base with Copy, the import page, and the customer card's small Destinations panel.

Thin views: writes go through crm.destinations.services, reads through crm.destinations.selectors. Every
staff role reads (``Cap.KNOWLEDGE_VIEW``); admin, manager, sales and service write (``Cap.KNOWLEDGE_EDIT``).
"""
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.dates import MONTHS as DJANGO_MONTHS
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views import View

from accounts.roles import Cap
from caravan.forms import apply_errors, errors_onto
from crm.customers.models import Customer
from crm.destinations import imports, reference, selectors, services
from crm.destinations.models import SECTIONS, Article, ArticleChange, ArticleImport, Attachment, VisaNote
from crm.trips.models import ChecklistItem

from .base import AgencyPage

MONTHS = [DJANGO_MONTHS[m] for m in range(1, 13)]  # Django's own translated month names
CLIMATE_KEYS = ("high", "low", "rain_mm", "note")
LIST_LIMIT = 200


class KnowledgePage(AgencyPage):
    required_cap = Cap.KNOWLEDGE_VIEW


class KnowledgeEditPage(AgencyPage):
    required_cap = Cap.KNOWLEDGE_EDIT


# --- reading in two languages ---------------------------------------------------------------------

def reader_is_zh() -> bool:
    return (get_language() or "").startswith("zh")


def bilingual(en: str, zh: str) -> dict | None:
    """One bilingual text for the reader: their language first, else the other one marked as such
    (``fallback``); ``other`` is the text in the other language when both exist. None when both are empty."""
    zh_first = reader_is_zh()
    first, second = (zh, en) if zh_first else (en, zh)
    first_lang, second_lang = ("zh", "en") if zh_first else ("en", "zh")
    first, second = (first or "").strip(), (second or "").strip()
    if first:
        return {"text": first, "lang": first_lang, "fallback": False,
                "other": second, "other_lang": second_lang}
    if second:
        return {"text": second, "lang": second_lang, "fallback": True, "other": "", "other_lang": first_lang}
    return None


def country_name(code: str) -> str:
    """A country's name in the reader's language, else its code."""
    return reference.country_name(code, "zh" if reader_is_zh() else "en") or code


def country_choices(blank=True) -> list[tuple[str, str]]:
    choices = reference.country_choices("zh" if reader_is_zh() else "en")
    return [("", "—")] + choices if blank else choices


class CountryField(forms.ChoiceField):
    """An ISO 3166 alpha-2 code from a menu of names in the reader's language (choices read when the form is made)."""

    def __init__(self, **kwargs):
        super().__init__(choices=country_choices, **kwargs)

    def to_python(self, value):
        return super().to_python(value).strip().upper()


def place_of(article: Article) -> str:
    city = article.city
    if city and reader_is_zh():
        city = reference.city_zh(city, article.country) or city
    parts = [city, article.region] if article.kind != Article.Kind.COUNTRY else []
    return " · ".join([p for p in parts if p] + [country_name(article.country)])


def _article(pk) -> Article:
    return get_object_or_404(Article, pk=pk)


def _stale_ids(ids) -> set[int]:
    return set(selectors.stale_visa_notes().filter(article_id__in=list(ids)).values_list("article_id", flat=True))


# --- forms ----------------------------------------------------------------------------------------

def _words(value: str) -> list[str]:
    return [w.strip() for w in (value or "").replace("，", ",").replace("、", ",").split(",") if w.strip()]


class ArticleForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=Article.Kind.choices)
    country = CountryField(label=gettext_lazy("Country"))
    region = forms.CharField(label=gettext_lazy("Region"), max_length=100, required=False)
    city = forms.CharField(label=gettext_lazy("City"), max_length=100, required=False,
                           help_text=gettext_lazy("English name, e.g. Tokyo."))
    iata_codes = forms.CharField(label=gettext_lazy("Airport codes"), max_length=200, required=False,
                                 help_text=gettext_lazy("Comma-separated, e.g. NRT, HND."))
    title_en = forms.CharField(label=gettext_lazy("Title (English)"), max_length=200, required=False)
    title_zh = forms.CharField(label=gettext_lazy("Title (Chinese)"), max_length=200, required=False)
    tags = forms.CharField(label=gettext_lazy("Tags"), max_length=500, required=False,
                           help_text=gettext_lazy("Comma-separated, e.g. family, beach, ski."))
    climate = forms.CharField(required=False, widget=forms.HiddenInput)  # where the service's climate errors land

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, label in SECTIONS.items():
            for lang, lang_label in (("en", gettext_lazy("English")), ("zh", gettext_lazy("Chinese"))):
                self.fields[f"{name}_{lang}"] = forms.CharField(
                    label=f"{label} ({lang_label})", required=False,
                    widget=forms.Textarea(attrs={"rows": 4, "lang": "zh-Hans" if lang == "zh" else "en"}))
        for month in range(12):
            for key in ("high", "low", "rain_mm"):
                self.fields[f"climate_{month}_{key}"] = forms.IntegerField(
                    required=False, min_value=-90 if key != "rain_mm" else 0, max_value=60 if key != "rain_mm" else 5000,
                    widget=forms.NumberInput(attrs={"class": "climate-input"}))
            self.fields[f"climate_{month}_note"] = forms.CharField(required=False, max_length=100)

    def section_rows(self):
        return [(label, self[f"{name}_en"], self[f"{name}_zh"]) for name, label in SECTIONS.items()]

    def climate_rows(self):
        return [(MONTHS[m], [self[f"climate_{m}_{key}"] for key in CLIMATE_KEYS]) for m in range(12)]

    @staticmethod
    def initial_for(article: Article | None, place: str = "") -> dict:
        if article is None:
            initial = {"kind": Article.Kind.CITY}
            if place:
                has_cjk = any("\u4e00" <= ch <= "\u9fff" for ch in place)
                initial["title_zh" if has_cjk else "title_en"] = place.strip()
                found = reference.find_place(place)  # "东京" → Tokyo, JP; "日本" → JP
                if found["country"]:
                    initial["country"] = found["country"]
                if found["city"]:
                    initial.update(city=found["city"], title_en=found["city"],
                                   title_zh=reference.city_zh(found["city"], found["country"]) or initial.get("title_zh", ""))
                    if found["iata"]:
                        initial["iata_codes"] = found["iata"]
                elif found["country"]:
                    initial["kind"] = Article.Kind.COUNTRY
            return initial
        initial = {name: getattr(article, name) for name in ("kind", "country", "region", "city", "title_en",
                                                              "title_zh")}
        initial["iata_codes"] = ", ".join(article.iata_codes or [])
        initial["tags"] = ", ".join(article.tags or [])
        for name in SECTIONS:
            for lang in ("en", "zh"):
                initial[f"{name}_{lang}"] = getattr(article, f"{name}_{lang}")
        for m, month in enumerate((article.climate or [])[:12]):
            for key in CLIMATE_KEYS:
                initial[f"climate_{m}_{key}"] = (month or {}).get(key)
        return initial

    def data_for_service(self) -> dict:
        data = self.cleaned_data
        result = {name: data[name].strip() if isinstance(data[name], str) else data[name]
                  for name in ("kind", "region", "city", "title_en", "title_zh")}
        result["country"] = data["country"].strip().upper()
        result["iata_codes"] = [code.upper() for code in _words(data["iata_codes"])]
        result["tags"] = _words(data["tags"])
        for name in SECTIONS:
            for lang in ("en", "zh"):
                result[f"{name}_{lang}"] = data[f"{name}_{lang}"]
        climate = [{key: data[f"climate_{m}_{key}"] for key in CLIMATE_KEYS} for m in range(12)]
        for month in climate:
            month["note"] = (month["note"] or "").strip()
        empty = all(month[k] is None for month in climate for k in ("high", "low", "rain_mm")) \
            and not any(month["note"] for month in climate)
        result["climate"] = [] if empty else climate
        return result


class VisaNoteForm(forms.Form):
    nationality = CountryField(label=gettext_lazy("Nationality"), help_text=gettext_lazy("The country of the passport."))
    requirement = forms.ChoiceField(label=gettext_lazy("Requirement"), choices=VisaNote.Requirement.choices)
    stay_days = forms.IntegerField(label=gettext_lazy("Days of stay allowed"), required=False, min_value=1,
                                   max_value=3650)
    documents = forms.MultipleChoiceField(label=gettext_lazy("Documents for the checklist"), required=False,
                                          choices=ChecklistItem.Document.choices, widget=forms.CheckboxSelectMultiple)
    text_en = forms.CharField(label=gettext_lazy("Notes (English)"), required=False,
                              widget=forms.Textarea(attrs={"rows": 3, "lang": "en"}))
    text_zh = forms.CharField(label=gettext_lazy("Notes (Chinese)"), required=False,
                              widget=forms.Textarea(attrs={"rows": 3, "lang": "zh-Hans"}))
    checked = forms.BooleanField(label=gettext_lazy("I checked this today with the consulate or an official source"),
                                 required=False)

    @staticmethod
    def initial_for(note: VisaNote) -> dict:
        return {"nationality": note.nationality, "requirement": note.requirement, "stay_days": note.stay_days,
                "documents": list(note.documents or []), "text_en": note.text_en, "text_zh": note.text_zh}

    @classmethod
    def for_note(cls, note: VisaNote, data=None) -> "VisaNoteForm":
        """The form changing ``note``: its nationality fixed (another nationality is another note)."""
        form = cls(data, initial=cls.initial_for(note), prefix=f"note{note.pk}")
        form.fields["nationality"].disabled = True
        return form


class AttachmentForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("File"), help_text=gettext_lazy("A photo or a PDF, up to 10 MB."))
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200, required=False)


class ImportForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("File"),
                           help_text=gettext_lazy("Markdown (.md, one article per file), or a spreadsheet (.xlsx, "
                                                  ".csv, one article per row)."))


# --- the list -------------------------------------------------------------------------------------

def all_tags() -> list[str]:
    tags = set()
    for row in Article.objects.values_list("tags", flat=True):
        tags.update(row or [])
    return sorted(tags, key=str.lower)


class DestinationListView(KnowledgePage, View):
    def get(self, request):
        query = request.GET.get("q", "").strip()[:100]
        tag = request.GET.get("tag", "").strip()[:40]
        stale_only = request.GET.get("stale") == "1"
        if query:  # best matches first (a sliced queryset: the tag is applied to what it found)
            articles = [a for a in selectors.search(query, limit=LIST_LIMIT) if not tag or tag in (a.tags or [])]
        else:
            found = Article.objects.filter(tags__contains=[tag]) if tag else Article.objects.all()
            articles = list(found[:LIST_LIMIT])
        stale = _stale_ids(a.pk for a in articles)
        if stale_only:
            articles = [a for a in articles if a.pk in stale]
        rows = [{"article": a, "place": place_of(a), "stale": a.pk in stale} for a in articles]
        context = {"rows": rows, "query": query, "tag": tag, "stale_only": stale_only,
                   "can_edit": request.user.can(Cap.KNOWLEDGE_EDIT)}
        if request.htmx and request.headers.get("HX-Target") == "destination-rows":
            return render(request, "frontend/destinations/_rows.html", context)
        context["tags"] = all_tags()
        return render(request, "frontend/destinations/list.html", context)


# --- the article ----------------------------------------------------------------------------------

def _change_fields(change: ArticleChange) -> list[str]:
    labels = []
    for name in change.fields or []:
        base, _sep, lang = name.rpartition("_")
        if lang in ("en", "zh") and base in SECTIONS:
            language = _("English") if lang == "en" else _("Chinese")
            labels.append(f"{SECTIONS[base]} ({language})")
            continue
        try:
            labels.append(str(Article._meta.get_field(name).verbose_name))
        except Exception:  # noqa: BLE001 - a field no longer on the model shows by its name
            labels.append(name)
    return labels


def article_context(request, article: Article, **given) -> dict:
    notes = list(article.visa_notes.select_related("checked_by"))
    can_edit = request.user.can(Cap.KNOWLEDGE_EDIT)
    sections = []
    for name, label in SECTIONS.items():
        shown = bilingual(getattr(article, f"{name}_en"), getattr(article, f"{name}_zh"))
        if shown:
            sections.append({"name": name, "label": label, **shown})
    climate = [{"month": MONTHS[m], **(month or {})} for m, month in enumerate((article.climate or [])[:12])]
    climate_notes = any((month.get("note") or "").strip() for month in climate)
    note_rows = []
    for note in notes:
        form = given.get("note_forms", {}).get(note.pk) or VisaNoteForm.for_note(note)
        note_rows.append({"note": note, "country": country_name(note.nationality), "text": bilingual(note.text_en,
                                                                                                      note.text_zh),
                          "documents": [ChecklistItem.Document(d).label for d in note.documents or []
                                        if d in ChecklistItem.Document.values],
                          "form": form})
    changes = list(article.changes.select_related("actor")[:50])
    for change in changes:
        change.field_labels = _change_fields(change)
    title = bilingual(article.title_en, article.title_zh)
    return {
        "article": article, "title": title, "place": place_of(article), "sections": sections,
        "climate": climate, "climate_notes": climate_notes, "notes": note_rows, "stale": any(n.is_stale for n in notes),
        "attachments": list(article.attachments.select_related("uploaded_by")), "changes": changes,
        "can_edit": can_edit, "note_form": given.get("note_form") or VisaNoteForm(prefix="new"),
        "attachment_form": given.get("attachment_form") or AttachmentForm(),
        "open_form": given.get("open_form", ""),
    }


class DestinationDetailView(KnowledgePage, View):
    def get(self, request, pk):
        return render(request, "frontend/destinations/detail.html", article_context(request, _article(pk)))


class DestinationCreateView(KnowledgeEditPage, View):
    def get(self, request):
        place = request.GET.get("place", "").strip()[:120]
        form = ArticleForm(initial=ArticleForm.initial_for(None, place))
        return render(request, "frontend/destinations/form.html", {"form": form, "place": place})

    def post(self, request):
        form = ArticleForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                article = services.article_save(actor=request.user, article=None, data=form.data_for_service())
                messages.success(request, _("Article saved."))
                return redirect("destination_detail", pk=article.pk)
        return render(request, "frontend/destinations/form.html", {"form": form}, status=400)


class DestinationEditView(KnowledgeEditPage, View):
    def get(self, request, pk):
        article = _article(pk)
        form = ArticleForm(initial=ArticleForm.initial_for(article))
        return render(request, "frontend/destinations/form.html", {"form": form, "article": article})

    def post(self, request, pk):
        article = _article(pk)
        form = ArticleForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                services.article_save(actor=request.user, article=article, data=form.data_for_service())
                messages.success(request, _("Article saved."))
                return redirect("destination_detail", pk=article.pk)
        return render(request, "frontend/destinations/form.html", {"form": form, "article": article}, status=400)


class DestinationDeleteView(KnowledgeEditPage, View):
    def post(self, request, pk):
        article = _article(pk)
        title = article.title
        try:
            services.article_delete(actor=request.user, article=article)
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
            return redirect("destination_detail", pk=pk)
        messages.success(request, _("“%(title)s” deleted.") % {"title": title})
        return redirect("destination_list")


# --- visa notes -----------------------------------------------------------------------------------

class VisaNoteSaveView(KnowledgeEditPage, View):
    """Add a visa note (prefix ``new``) or change one (prefix ``note<id>``)."""

    def post(self, request, pk):
        article = _article(pk)
        note_id = request.POST.get("note", "")
        note = None
        if note_id:
            note = get_object_or_404(VisaNote, pk=note_id if note_id.isdigit() else 0, article=article)
        form = VisaNoteForm.for_note(note, request.POST) if note else VisaNoteForm(request.POST, prefix="new")
        prefix = form.prefix
        if form.is_valid():
            data = dict(form.cleaned_data)
            nationality = data.pop("nationality").strip().upper()
            with errors_onto(form):
                services.visa_note_save(actor=request.user, article=article, nationality=nationality, data=data)
                messages.success(request, _("Visa note for %(country)s saved.") % {"country": country_name(nationality)})
                return redirect(reverse("destination_detail", args=[pk]) + "#visa")
        given = {"note_forms": {note.pk: form}} if note else {"note_form": form}
        return render(request, "frontend/destinations/detail.html",
                      article_context(request, article, open_form=prefix, **given), status=400)


class VisaNoteCheckedView(KnowledgeEditPage, View):
    """"Mark checked": the note as it is, checked today by the person clicking."""

    def post(self, request, pk):
        note = get_object_or_404(VisaNote.objects.select_related("article"), pk=pk)
        try:
            services.visa_note_save(actor=request.user, article=note.article, nationality=note.nationality,
                                    data={"checked": True})
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.success(request, _("Visa note for %(country)s marked as checked today.")
                             % {"country": country_name(note.nationality)})
        return redirect(reverse("destination_detail", args=[note.article_id]) + "#visa")


# --- attachments ----------------------------------------------------------------------------------

class AttachmentAddView(KnowledgeEditPage, View):
    def post(self, request, pk):
        article = _article(pk)
        form = AttachmentForm(request.POST, request.FILES)
        if form.is_valid():
            with errors_onto(form):
                services.attachment_add(actor=request.user, article=article, upload=form.cleaned_data["file"],
                                        title=form.cleaned_data["title"])
                messages.success(request, _("Attachment added."))
                return redirect(reverse("destination_detail", args=[pk]) + "#attachments")
        return render(request, "frontend/destinations/detail.html",
                      article_context(request, article, attachment_form=form, open_form="attachment"), status=400)


class AttachmentDownloadView(KnowledgePage, View):
    """An attachment's file, read from this agency's storage by id: never a public media URL."""

    def get(self, request, pk):
        attachment = get_object_or_404(Attachment, pk=pk)
        try:
            handle = attachment.file.open("rb")
        except (FileNotFoundError, ValueError):
            raise Http404 from None
        name = attachment.file.name.rsplit("/", 1)[-1]
        inline = attachment.is_image  # photos show in the browser; a PDF is saved (no viewer in a sandboxed answer)
        response = FileResponse(handle, as_attachment=not inline, filename=name,
                                content_type=attachment.content_type or "application/octet-stream")
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
        response["Cache-Control"] = "private, max-age=0"
        return response


class AttachmentRemoveView(KnowledgeEditPage, View):
    def post(self, request, pk):
        attachment = get_object_or_404(Attachment, pk=pk)
        article_id = attachment.article_id
        try:
            services.attachment_remove(actor=request.user, attachment=attachment)
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.success(request, _("Attachment removed."))
        return redirect(reverse("destination_detail", args=[article_id]) + "#attachments")


# --- the shared base and the import ---------------------------------------------------------------

class SharedListView(KnowledgePage, View):
    def get(self, request):
        query = request.GET.get("q", "").strip()[:100]
        shared = selectors.shared_articles(query)
        copied = selectors.copies_of_shared()
        rows = [{"article": a, "place": place_of(a), "copy": copied.get(a.pk),
                 "summary": bilingual(a.overview_en, a.overview_zh)} for a in shared]
        return render(request, "frontend/destinations/shared.html", {
            "rows": rows, "query": query, "can_edit": request.user.can(Cap.KNOWLEDGE_EDIT)})


class SharedCopyView(KnowledgeEditPage, View):
    def post(self, request, pk):
        try:
            article = services.article_copy_shared(actor=request.user, shared_id=pk)
        except services.AlreadyCopied as exc:
            messages.info(request, _("This article is already in your knowledge base."))
            return redirect("destination_detail", pk=exc.copy_id)
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
            return redirect(reverse("destination_shared") + (f"?{urlencode({'q': request.POST['q']})}"
                                                               if request.POST.get("q") else ""))
        messages.success(request, _("Copied into your knowledge base: edit it as you like."))
        return redirect("destination_detail", pk=article.pk)


class ImportView(KnowledgeEditPage, View):
    """The upload: stored and queued (crm.destinations.imports.accept), never read here; then the import's page."""

    def get(self, request):
        return render(request, "frontend/destinations/import.html", {"form": ImportForm()})

    def post(self, request):
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                job = services.import_articles(actor=request.user, upload=form.cleaned_data["file"])
            except ValidationError as exc:
                apply_errors(form, exc)
            else:
                return redirect("destination_import_detail", pk=job.pk)
        return render(request, "frontend/destinations/import.html", {"form": form}, status=400)


class ImportDetailView(KnowledgeEditPage, View):
    """An import: progress while the worker reads the file (htmx polls every second), then its report."""

    def get(self, request, pk):
        job = imports.current(get_object_or_404(ArticleImport, pk=pk))
        if request.htmx:  # the poll: a fragment while the worker works, then a reload
            if not job.finished:
                return render(request, "frontend/destinations/_import_working.html", {"job": job})
            response = HttpResponse(status=204)
            response["HX-Refresh"] = "true"
            return response
        return render(request, "frontend/destinations/import.html", {
            "form": ImportForm(), "job": job, "report": job.report if job.finished else None})


# --- where staff meet it: the customer card's panel -----------------------------------------------

class CustomerDestinationsPanel(KnowledgePage, View):
    """The customer card's "Destinations" panel (loaded by the card): articles for the customer's
    interests and recent trips' destinations."""

    def permits(self, user) -> bool:
        return user.can(Cap.CUSTOMERS_VIEW)

    def get(self, request, pk):
        customer = get_object_or_404(Customer, pk=pk)
        articles = selectors.articles_for_customer(customer)
        stale = _stale_ids(a.pk for a in articles)
        rows = [{"article": a, "place": place_of(a), "stale": a.pk in stale} for a in articles]
        return render(request, "frontend/destinations/_card.html", {"customer": customer, "rows": rows})


def trip_destination_context(trip, user) -> dict:
    """For the trip page (template frontend/destinations/_trip.html): the article of its destination (or the
    link to write one, prefilled), and the visa notes for its travelers' nationalities (stale ones warned)."""
    from crm.trips.services import traveler_nationalities

    if not trip.destination or not user.can(Cap.KNOWLEDGE_VIEW):
        return {"destination_shown": False}
    article = selectors.article_for_place(trip.destination)
    if article is None:
        return {"destination_shown": True, "destination_article": None,
                "destination_can_write": user.can(Cap.KNOWLEDGE_EDIT),
                "destination_write_url": reverse("destination_create") + "?" + urlencode({"place": trip.destination})}
    nationalities = sorted(set(traveler_nationalities(trip).values()))
    notes = {n.nationality: n for n in article.visa_notes.select_related("checked_by")}
    applying = [{"nationality": nat, "country": country_name(nat), "note": notes.get(nat)} for nat in nationalities]
    return {"destination_shown": True, "destination_article": article, "destination_place": place_of(article),
            "destination_visa": applying,
            "destination_visa_stale": any(row["note"] is not None and row["note"].is_stale for row in applying)}


class TripChecklistFromVisaNotesView(KnowledgePage, View):
    """"Start checklist from visa notes" on the trip page: each traveler's documents from the visa note of
    the destination's article for their nationality (crm.trips.services.checklist_from_visa_notes)."""

    def permits(self, user) -> bool:
        return user.can(Cap.PIPELINE_WORK)

    def post(self, request, pk):
        from crm.trips import selectors as trip_selectors
        from crm.trips import services as trip_services
        from crm.trips.models import Trip

        try:
            trip = trip_selectors.trip_detail(pk=pk)
        except Trip.DoesNotExist:
            raise Http404 from None
        article = selectors.article_for_place(trip.destination) if trip.destination else None
        back = reverse("trip_detail", args=[pk]) + "#destination"
        if article is None:
            messages.error(request, _("No article for this trip's destination yet: write one with its visa notes first."))
            return redirect(back)
        try:
            report = trip_services.checklist_from_visa_notes(
                actor=request.user, trip=trip, article_title=article.title,
                note_for=lambda nationality: selectors.visa_note_for(article, nationality))
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
            return redirect(back)
        messages.success(request, ngettext("%(count)d document added to the checklists from the visa notes.",
                                           "%(count)d documents added to the checklists from the visa notes.",
                                           report["added"]) % {"count": report["added"]})
        if report["missing"]:
            messages.warning(request, _("No visa note for: %(countries)s. Those travelers got the usual documents.")
                             % {"countries": ", ".join(country_name(c) for c in report["missing"])})
        if report["stale"]:
            messages.warning(request, _("Some visa notes used were not checked for 180 days: check them with the "
                                        "consulate before telling the customer."))
        return redirect(reverse("trip_detail", args=[pk]) + "#documents")
