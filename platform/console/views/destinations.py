"""The operators' shared destination base (platform domain, ``public`` schema): one list and one form
page. Every agency reads these articles and may copy them into its own knowledge base
(``crm.destinations``); the writes are the same services the agencies' own articles use."""
from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from caravan.forms import errors_onto
from crm.destinations import reference, selectors, services
from crm.destinations.models import SECTIONS, Article, VisaNote
from crm.trips.models import ChecklistItem

from .agencies import OperatorRequired


def _split(text: str) -> list[str]:
    return [part.strip() for part in (text or "").replace("，", ",").split(",") if part.strip()]


def climate_text(climate: list[dict]) -> str:
    """Twelve lines "high / low / rain_mm / note" for the form."""
    def show(value):
        return "" if value is None else str(value)
    return "\n".join(" / ".join([show(m.get("high")), show(m.get("low")), show(m.get("rain_mm")), m.get("note", "")])
                     for m in climate or [])


def climate_parse(text: str) -> list[dict] | str:
    """The form's twelve lines as months, or the raw text when it is not twelve lines (the service says why)."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    if not lines:
        return []
    months = []
    for line in lines:
        parts = [p.strip() for p in line.split("/", 3)] + ["", "", "", ""]
        months.append({"high": parts[0] or None, "low": parts[1] or None, "rain_mm": parts[2] or None, "note": parts[3]})
    return months


class ArticleForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=Article.Kind.choices)
    country = forms.ChoiceField(label=gettext_lazy("Country"), choices=())
    region = forms.CharField(label=gettext_lazy("Region"), max_length=100, required=False)
    city = forms.CharField(label=gettext_lazy("City"), max_length=100, required=False,
                           help_text=gettext_lazy("English name, e.g. Tokyo."))
    iata_codes = forms.CharField(label=gettext_lazy("Airport codes"), max_length=200, required=False,
                                 help_text=gettext_lazy("Comma-separated, e.g. NRT, HND."))
    title_en = forms.CharField(label=gettext_lazy("Title (English)"), max_length=200, required=False)
    title_zh = forms.CharField(label=gettext_lazy("Title (Chinese)"), max_length=200, required=False)
    tags = forms.CharField(label=gettext_lazy("Tags"), max_length=1000, required=False,
                           help_text=gettext_lazy("Comma-separated."))
    climate = forms.CharField(label=gettext_lazy("Climate by month"), required=False,
                              widget=forms.Textarea(attrs={"rows": 12}),
                              help_text=gettext_lazy("Twelve lines, January first: high °C / low °C / rain mm / note."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["country"].choices = [("", "—")] + reference.country_choices(get_language() or "en")
        for name, label in SECTIONS.items():
            for lang, lang_label in (("en", _("English")), ("zh", _("Chinese"))):
                self.fields[f"{name}_{lang}"] = forms.CharField(
                    label=f"{label} ({lang_label})", required=False, widget=forms.Textarea(attrs={"rows": 4}))

    def data_for_service(self) -> dict:
        data = dict(self.cleaned_data)
        data["iata_codes"] = _split(data["iata_codes"])
        data["tags"] = _split(data["tags"])
        data["climate"] = climate_parse(data["climate"])
        return data


class VisaNoteForm(forms.Form):
    nationality = forms.ChoiceField(label=gettext_lazy("Nationality"), choices=())
    requirement = forms.ChoiceField(label=gettext_lazy("Requirement"), choices=VisaNote.Requirement.choices)
    stay_days = forms.IntegerField(label=gettext_lazy("Days of stay allowed"), required=False, min_value=1, max_value=3650)
    documents = forms.MultipleChoiceField(label=gettext_lazy("Documents"), required=False,
                                          choices=ChecklistItem.Document.choices, widget=forms.CheckboxSelectMultiple)
    text_en = forms.CharField(label=gettext_lazy("Notes (English)"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    text_zh = forms.CharField(label=gettext_lazy("Notes (Chinese)"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    checked = forms.BooleanField(label=gettext_lazy("I have just checked this"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["nationality"].choices = reference.country_choices(get_language() or "en")
        self.fields["nationality"].initial = "CN"


def _initial(article: Article) -> dict:
    initial = {name: getattr(article, name) for name in services.EDITABLE}
    initial["iata_codes"] = ", ".join(article.iata_codes)
    initial["tags"] = ", ".join(article.tags)
    initial["climate"] = climate_text(article.climate)
    return initial


class SharedArticleListView(OperatorRequired, View):
    """The shared base: search, and a link to each article's form."""

    def get(self, request):
        query = request.GET.get("q", "").strip()
        articles = list(selectors.search(query, limit=500))
        return render(request, "console/destinations.html", {"articles": articles, "query": query})


class SharedArticleFormView(OperatorRequired, View):
    """A new shared article, or one to change (with its visa notes, and delete)."""

    def _render(self, request, article, form, visa_form, status=200):
        notes = list(article.visa_notes.all()) if article else []
        return render(request, "console/destination_form.html", {
            "article": article, "form": form, "visa_form": visa_form, "notes": notes,
            "changes": list(selectors.changes(article)[:20]) if article else []}, status=status)

    def get(self, request, pk=None):
        article = get_object_or_404(Article, pk=pk) if pk else None
        form = ArticleForm(initial=_initial(article) if article else {"kind": Article.Kind.CITY})
        return self._render(request, article, form, VisaNoteForm() if article else None)

    def post(self, request, pk=None):
        article = get_object_or_404(Article, pk=pk) if pk else None
        action = request.POST.get("action", "save")
        if article and action == "delete":
            services.article_delete(actor=request.user, article=article)
            messages.success(request, _("Shared article deleted."))
            return redirect("console:destinations")
        if article and action == "visa":
            visa_form = VisaNoteForm(request.POST)
            if visa_form.is_valid():
                data = dict(visa_form.cleaned_data)
                nationality = data.pop("nationality")
                with errors_onto(visa_form):
                    services.visa_note_save(actor=request.user, article=article, nationality=nationality, data=data)
                    messages.success(request, _("Visa note saved."))
                    return redirect("console:destination", pk=article.pk)
            return self._render(request, article, ArticleForm(initial=_initial(article)), visa_form, status=400)
        form = ArticleForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                saved = services.article_save(actor=request.user, article=article, data=form.data_for_service())
                messages.success(request, _("Shared article saved."))
                return redirect("console:destination", pk=saved.pk)
        return self._render(request, article, form, VisaNoteForm() if article else None, status=400)
