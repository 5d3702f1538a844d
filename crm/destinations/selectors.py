"""Reads of the destination knowledge base: search (Chinese, pinyin, English), the article for a trip's
destination or a customer's interests and trips, visa notes and their staleness, and the operators'
shared base (``public``), which agencies read and copy."""
from datetime import timedelta

from django.contrib.postgres.search import TrigramWordSimilarity
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from . import reference
from .models import STALE_AFTER_DAYS, Article, VisaNote
from .text import query_terms


def articles() -> QuerySet[Article]:
    """The active schema's articles with what lists show."""
    return Article.objects.prefetch_related("visa_notes")


def search(query: str, *, limit=50) -> QuerySet[Article]:
    """Articles matching ``query``: every word found in the article's search text (titles, place names in
    English and Chinese, airport codes, pinyin full or initials, tags), or for a Latin word of four
    letters or more, close to a word of it (a typo). Best matches first; every article when blank."""
    return matching(articles(), query)[:limit]


def matching(qs: QuerySet[Article], query: str) -> QuerySet[Article]:
    """``qs`` narrowed to the articles matching ``query`` (as :func:`search`), best first, not sliced."""
    terms = query_terms(query)
    if not terms:
        return qs.order_by("country", "region", "city", "id")
    exact = Q()
    for term in terms:
        exact &= Q(search_text__contains=term)
    found = qs.filter(exact)
    typo_terms = [term for term in terms if term.isascii() and len(term) >= 4]
    if typo_terms and not found.exists():
        # Only when the words as typed find nothing: a word-similarity scan costs ~20x an index LIKE on
        # a large base (bench/destinations.py), and exact hits are what people mean when there are any.
        near = Q()
        for term in terms:
            near &= (Q(search_text__contains=term) | Q(search_text__trigram_word_similar=term)
                     if term in typo_terms else Q(search_text__contains=term))
        found = qs.filter(near)
    whole = " ".join(terms)
    return (found.annotate(rank=TrigramWordSimilarity(whole, "search_text"))
            .order_by("-rank", "country", "city", "id"))


def article_for_place(text: str) -> Article | None:
    """The agency's best article for a free-text destination ("东京", "Tokyo, Japan", "日本", "NRT"):
    the city's article (by name or airport code), else the country's, else an article titled so."""
    text = (text or "").strip()
    if not text:
        return None
    place = reference.find_place(text)
    qs = Article.objects.all()
    if place["city"]:
        found = qs.filter(country=place["country"], city__iexact=place["city"])
        found = sorted(found, key=lambda a: (a.kind != Article.Kind.CITY, a.pk))
        if found:
            return found[0]
    if place["iata"]:
        found = qs.filter(iata_codes__contains=[place["iata"]]).order_by("id").first()
        if found:
            return found
    found = qs.filter(Q(title_en__iexact=text) | Q(title_zh=text)).order_by("id").first()
    if found:
        return found
    if place["country"]:
        return (qs.filter(country=place["country"], kind=Article.Kind.COUNTRY).order_by("id").first()
                or None)
    return None


def articles_for_customer(customer) -> list[Article]:
    """Articles for the destinations in the customer's interests and of their last five trips (newest
    first), each once."""
    from crm.customers.models import Preferences
    from crm.trips.models import Trip

    places: list[str] = list(Preferences.objects.filter(customer=customer).values_list("interests", flat=True).first()
                             or [])
    places.extend(Trip.objects.filter(customer=customer).exclude(destination="")
                  .order_by(F("depart_on").desc(nulls_last=True), "-id").values_list("destination", flat=True)[:5])
    found: list[Article] = []
    seen: set[int] = set()
    for place in places:
        article = article_for_place(place)
        if article and article.pk not in seen:
            seen.add(article.pk)
            found.append(article)
    return found


def visa_note_for(article: Article, nationality: str) -> VisaNote | None:
    return VisaNote.objects.filter(article=article, nationality=(nationality or "").upper()).first()


def stale_visa_notes(days=STALE_AFTER_DAYS) -> QuerySet[VisaNote]:
    """Visa notes never checked or last checked more than ``days`` days ago."""
    before = timezone.localdate() - timedelta(days=days)
    return (VisaNote.objects.filter(Q(checked_on__isnull=True) | Q(checked_on__lt=before))
            .select_related("article").order_by("checked_on", "article_id"))


def stale_articles(days=STALE_AFTER_DAYS) -> QuerySet[Article]:
    """Articles with at least one stale visa note."""
    return articles().filter(pk__in=stale_visa_notes(days).values("article_id"))


def changes(article: Article):
    return article.changes.select_related("actor")


def shared_articles(query="") -> list[Article]:
    """The operators' shared base (``public``), searched like the agency's own, as a list read now (the
    rows come from ``public`` whatever agency is active)."""
    with schema_context(get_public_schema_name()):
        return list(search(query, limit=200))


def shared_article(shared_id: int) -> Article | None:
    """One article of the shared base with its visa notes, or None."""
    with schema_context(get_public_schema_name()):
        article = Article.objects.filter(pk=shared_id).first()
        if article is not None:
            article.shared_visa_notes = list(article.visa_notes.order_by("nationality"))
        return article


def copies_of_shared() -> dict[int, int]:
    """{shared article id: the agency's copy id} for the active agency."""
    return dict(Article.objects.filter(copied_from__isnull=False).values_list("copied_from", "id"))
