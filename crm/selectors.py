"""Customer reads: lists, search-as-you-type, duplicates, the call-center screen pop."""
import re

from django.contrib.postgres.search import TrigramSimilarity
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from caravan.tenancy import require_agency

from . import crypto
from .models import Contact, Customer, Employment, Phone, TravelDocument
from .normalize import phone_e164

_DIGITS = re.compile(r"\d")


def customer_list(*, filters: dict | None = None) -> QuerySet:
    """Live customers (merged-away records excluded), filtered by the list page's / API's filters."""
    filters = filters or {}
    qs = Customer.objects.filter(merged_into__isnull=True).select_related("owner")
    if filters.get("kind"):
        qs = qs.filter(kind=filters["kind"])
    if filters.get("owner"):
        qs = qs.filter(owner_id=filters["owner"])
    if filters.get("unowned"):
        qs = qs.filter(owner__isnull=True)
    if filters.get("source"):
        qs = qs.filter(source=filters["source"])
    if filters.get("tag"):
        qs = qs.filter(tags__contains=[filters["tag"]])
    if filters.get("company"):
        qs = qs.filter(employments__company_id=filters["company"])
    if filters.get("q"):
        ids = [c.pk for c in customer_search(query=filters["q"], limit=500)]
        qs = qs.filter(pk__in=ids)
    return qs


def customer_search(*, query: str, limit: int = 10) -> list[Customer]:
    """Search as you type: a name (Chinese, Latin, partial, small typos), a phone in any format,
    an e-mail, a company, or the last four characters of a document number."""
    query = (query or "").strip()
    if not query:
        return []
    live = Customer.objects.filter(merged_into__isnull=True)
    found: list[Customer] = []
    digits = "".join(_DIGITS.findall(query))
    if len(digits) >= 5 and len(digits) >= len(query.replace(" ", "").replace("-", "").replace("+", "")) - 1:
        phones = Phone.objects.filter(number__contains=_national_digits(query, digits)).values("customer_id")[:limit]
        found += list(live.filter(pk__in=phones))
    clean = crypto.normalise_number(query)
    if 4 <= len(clean) <= 6 and any(ch.isdigit() for ch in clean):
        docs = TravelDocument.objects.filter(tail_hash=crypto.lookup_hash("tail:" + clean[-4:])).values("customer_id")
        found += [c for c in live.filter(pk__in=docs)[:limit] if c not in found]
    text = query.lower()
    by_name = (live.filter(search_text__contains=text)
               .annotate(similarity=TrigramSimilarity("search_text", text))
               .order_by("-similarity", "name")[:limit])
    found += [c for c in by_name if c not in found]
    if len(found) < limit and len(text) >= 3:  # typos: nearest by trigram similarity
        fuzzy = (live.filter(search_text__trigram_word_similar=text)
                 .annotate(similarity=TrigramSimilarity("search_text", text)).order_by("-similarity")[:limit])
        found += [c for c in fuzzy if c not in found]
    return found[:limit]


def _national_digits(query: str, digits: str) -> str:
    """Digits to look for inside E.164 numbers: drop a leading 00/+country or trunk 0 when given."""
    try:
        e164 = phone_e164(query, require_agency().default_region)
        return e164.lstrip("+")
    except Exception:
        return digits.lstrip("0")


def similar_customers(*, name: str, exclude: Customer | None = None, limit: int = 5) -> list[Customer]:
    """Possible duplicates by name (R-CUST-7): same or similar Chinese or Latin spelling."""
    text = (name or "").strip().lower()
    if not text:
        return []
    qs = (Customer.objects.filter(merged_into__isnull=True)
          .filter(Q(search_text__trigram_similar=text) | Q(search_text__contains=text))
          .annotate(similarity=TrigramSimilarity("search_text", text)).order_by("-similarity"))
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return list(qs[:limit])


def customer_card(*, pk: int) -> Customer:
    """One customer with what the card shows, in a handful of queries."""
    return (Customer.objects.select_related("owner", "preferences")
            .prefetch_related("phones", "emails", "addresses", "family_dates", "loyalty", "documents",
                              Prefetch("employments", queryset=Employment.objects.select_related("company")),
                              Prefetch("staff_links", queryset=Employment.objects.select_related("person")))
            .get(pk=pk))


def screen_pop(*, number: str) -> dict | None:
    """What a call-center agent needs the moment a known number rings (R-CUST-9)."""
    e164 = phone_e164(number, require_agency().default_region)
    phone = Phone.objects.select_related("customer__owner").filter(number=e164).first()
    if phone is None:
        return {"number": e164, "customer": None}
    customer = phone.customer
    while customer.merged_into_id:  # a number still on a merged-away record leads to the survivor
        customer = customer.merged_into
    companies = list(Employment.objects.filter(person=customer, active=True).values_list("company__name", flat=True))
    contacts = list(Contact.objects.filter(customer=customer).select_related("staff")[:5])
    complaints = list(Contact.objects.filter(customer=customer, channel=Contact.Channel.COMPLAINT, resolved=False)[:5])
    return {"number": e164, "customer": customer, "companies": companies, "last_contacts": contacts,
            "open_complaints": complaints, "trips": [], "tier": None, "now": timezone.now()}
