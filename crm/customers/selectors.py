"""Customer reads: lists, search-as-you-type, duplicates, the call-center screen pop."""
import re
from datetime import datetime
from functools import cache

from django.contrib.postgres.search import TrigramSimilarity
from django.db import connection
from django.contrib.postgres.fields import ArrayField
from django.db.models import F, Func, IntegerField, Prefetch, Q, QuerySet, TextField, Value
from django.utils import timezone

from accounts.models import User
from caravan import texts
from caravan.db.prepared import execute_prepared
from caravan.tenancy import require_agency

from . import crypto, list_filters
from . import screen_pop as screen_pop_parts
from .models import Contact, Customer, Employment, Phone, TravelDocument, format_latin_name
from .normalize import _CJK, collapse_cjk_spaces, phone_e164

_DIGITS = re.compile(r"\d")


SEARCH_LIST_LIMIT = 500  # a list filtered by a search shows its best matches, at most this many


def customer_list(*, filters: dict | None = None) -> QuerySet:
    """Live customers (merged-away records excluded), filtered by the list page's / API's filters: the
    core's and those other apps registered (``list_filters``)."""
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
    if filters.get("tier"):
        qs = qs.filter(tier_status__tier_id=filters["tier"]) if str(filters["tier"]).isdigit() else qs.none()
    if filters.get("company"):
        qs = qs.filter(employments__company_id=filters["company"])
    for extra in list_filters.registered():  # the other apps' filters (value: segment, quadrant, rfm)
        if filters.get(extra.key):
            qs = extra.apply(qs, filters[extra.key])
    if filters.get("q"):
        qs = customers_matching(qs, filters["q"])
    return qs


def customers_matching(qs: QuerySet, query: str) -> QuerySet:
    """``qs`` narrowed to what the top-bar search finds for ``query`` (at most SEARCH_LIST_LIMIT),
    best match first: the list page's ``q`` and the API's ``q`` and ``search``."""
    ids = customer_search_ids(query=query, limit=SEARCH_LIST_LIMIT)
    rank = Func(Value(ids, output_field=ArrayField(IntegerField())), F("pk"), function="array_position",
                output_field=IntegerField())
    return qs.filter(pk__in=ids).alias(search_rank=rank).order_by("search_rank")  # best match first


def customer_rows(*, ids: list[int]) -> list[dict]:
    """The customer list's lines for ``ids``, in that order: what ``CustomerRowOutput`` shows (the API's list).

    One written-out statement, as the screen pop: the first phone (E.164) and e-mail, the companies (every
    employment, in the order they were made), the account manager and the service tier in force. The ORM's
    page, three prefetches and the row serializer cost more Python than the database's work (issue 22)."""
    if not ids:
        return []
    status = Customer._meta.get_field("tier_status").related_model  # crm.tiers' CustomerTier
    tiers = status._meta.get_field("tier").related_model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT c.id, c.kind, c.name, c.latin_surname, c.latin_given, c.owner_id, o.full_name, c.tags,
              (SELECT p.number FROM crm_phone p WHERE p.customer_id = c.id ORDER BY p.id LIMIT 1),
              (SELECT e.address FROM crm_email e WHERE e.customer_id = c.id ORDER BY e.id LIMIT 1),
              (SELECT json_agg(json_build_array(co.id, co.name, co.latin_surname, co.latin_given) ORDER BY em.id)
               FROM crm_employment em JOIN crm_customer co ON co.id = em.company_id WHERE em.person_id = c.id),
              t.name
            FROM crm_customer c LEFT JOIN accounts_user o ON o.id = c.owner_id
              LEFT JOIN {status._meta.db_table} s ON s.customer_id = c.id LEFT JOIN {tiers} t ON t.id = s.tier_id
            WHERE c.id = ANY(%s)""", [list(ids)])
        found = {row[0]: row for row in cursor.fetchall()}
    return [_row(found[pk]) for pk in ids if pk in found]


def _row(row) -> dict:
    pk, kind, name, surname, given, owner_id, owner_name, tags, phone, email, companies, tier = row
    return {"id": pk, "kind": kind, "name": name, "latin_name": format_latin_name(surname, given),
            "owner": {"id": owner_id, "full_name": owner_name} if owner_id is not None else None,
            "tags": tags, "phone": phone, "email": email,
            "companies": [{"id": co, "name": co_name, "latin_name": format_latin_name(co_surname, co_given)}
                          for co, co_name, co_surname, co_given in companies or []],
            "tier": tier}


def customer_search(*, query: str, limit: int = 10) -> list[Customer]:
    """Search as you type: a name (Chinese, Latin, partial, small typos), a phone in any format,
    an e-mail, a company, or the last four characters of a document number. Best match first."""
    ids = customer_search_ids(query=query, limit=limit)
    customers = Customer.objects.in_bulk(ids)
    return [customers[pk] for pk in ids if pk in customers]


def customer_search_ids(*, query: str, limit: int = 10) -> list[int]:
    """The ids :func:`customer_search` finds, without loading the customers (list filters use this)."""
    query = (query or "").strip()
    if not query:
        return []
    live = Customer.objects.filter(merged_into__isnull=True).order_by()
    found: list[int] = []
    digits = "".join(_DIGITS.findall(query))
    if len(digits) >= 5 and len(digits) >= len(query.replace(" ", "").replace("-", "").replace("+", "")) - 1:
        phones = Phone.objects.filter(number__contains=_national_digits(query, digits)).values("customer_id")[:limit]
        found += live.filter(pk__in=phones).order_by("pk").values_list("pk", flat=True)  # one order every time
    clean = crypto.normalise_number(query)
    if 4 <= len(clean) <= 6 and any(ch.isdigit() for ch in clean):
        docs = TravelDocument.objects.filter(tail_hash=crypto.lookup_hash("tail:" + clean[-4:])).values("customer_id")
        found += [pk for pk in live.filter(pk__in=docs).values_list("pk", flat=True)[:limit] if pk not in found]
    text = collapse_cjk_spaces(query.lower())  # '李 娜' finds 李娜; 'li na' keeps its space
    seen = set(found)
    if len(text) < 3:
        # Too short for the trigram index, and thousands match: names that start with it, then any
        # match, unranked, so the reading stops after ``limit`` rows instead of ranking them all. The
        # prefix, and a Chinese character or pair anywhere, are looked up in the grams index: a prefix
        # nobody has ('zh': names start in Chinese) or a rare pair ('许佳') read the whole table
        # (300 ms at 1,000,000 customers). Other text anywhere ('zh', 'a') is common: the scan ends soon.
        grams = live.alias(grams=SEARCH_GRAMS)
        by_name = _first_rows_starting(text, limit) if len(text) == 1 and _CJK_ONLY.fullmatch(text) else []
        if len(by_name) < limit:
            by_name = _ids_without_parallel_workers(grams.filter(grams__contains=["^" + text])[:limit])
        if len(by_name) < limit:
            anywhere = (grams.filter(grams__contains=[text]) if _CJK_ONLY.fullmatch(text)
                        else live.filter(search_text__contains=text))
            by_name += _ids_without_parallel_workers(anywhere.exclude(pk__in=by_name)[:limit - len(by_name)])
        found += [pk for pk in by_name if pk not in seen and not seen.add(pk)]
        return found[:limit]
    # Typos, when nothing is found as typed (issue 22: before, when fewer than ten were; at 1,000,000 customers
    # that word-similarity match cost 15-250 ms for most long e-mail prefixes and rare full names, which had
    # found their customer already). Not for digits: phone numbers and document tails are not in the search
    # text, and names have no digits to mistype.
    typos = not found and not _PHONE_LIKE.fullmatch(query)
    as_typed, fuzzy = _text_matches(text, limit, typos=typos)
    found += [pk for pk in as_typed if pk not in seen and not seen.add(pk)]
    if typos and not found:
        found += fuzzy
    return found[:limit]


# A text held by more customers than RANK_AT_MOST has its first RANK_AT_MOST of them ranked: the list's own
# limit, so the top bar's ten are the list's first ten. At 1,000,000 customers the 2,000 ranked before cost a
# heap read and a similarity each (issue 22: e-mail and pinyin prefixes were the slowest searches).
RANK_AT_MOST, FUZZY_AT_MOST, FIRST_LOOK = SEARCH_LIST_LIMIT, 200, 5000
# What the grams index holds (migration 0011): '^' + the first one and two characters of the search text,
# and every CJK character and pair of neighbouring CJK characters in it.
SEARCH_GRAMS = Func(F("search_text"), function="crm_search_grams", output_field=ArrayField(TextField()))
_CJK_ONLY = re.compile(f"[{_CJK}]+")
_PHONE_LIKE = re.compile(r"[\d\s+\-().]+")


def _first_rows_starting(text: str, limit: int) -> list[int]:
    """``limit`` live customers whose search text starts with ``text``, if the first FIRST_LOOK rows hold that
    many, else fewer. Ten of a common surname (王: 8 % of names) are in the first few hundred rows, where the
    grams index would first list all of them (80,000 at 1,000,000 customers: 30–50 ms); a rare one costs
    FIRST_LOOK rows more before the index. Any ``limit`` of them will do: a short query's matches are not ranked.

    The list's 500 (issue 22): when the first FIRST_LOOK rows hold one of the commonest surnames (5 % of them or
    more) but fewer than ``limit``, the rows that should hold ``limit`` are read (at most 5 × FIRST_LOOK): 10 ms
    for 500 张 at 1,000,000 customers, where the grams index took 50 ms under load."""
    found = _head_starting(text, limit, FIRST_LOOK)
    if FIRST_LOOK // 20 <= len(found) < limit:
        found = _head_starting(text, limit, min(FIRST_LOOK * limit * 5 // (4 * len(found)), 5 * FIRST_LOOK))
    return found


def _head_starting(text: str, limit: int, rows: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT id FROM (SELECT id, search_text FROM crm_customer WHERE merged_into_id IS NULL LIMIT %s) AS head
               WHERE search_text LIKE %s LIMIT %s""",
            [rows, connection.ops.prep_for_like_query(text) + "%", limit])
        return [pk for (pk,) in cursor.fetchall()]


def _ids_without_parallel_workers(qs: QuerySet) -> list[int]:
    """The ids ``qs`` holds, planned without parallel workers. The grams function's COST (crm 0013) makes the
    planner expect a parallel scan to pay; at 1,000,000 customers it launched two workers for 97 rows: 40 ms
    under load where the same lookup alone took 0.6 ms (issue 22)."""
    return [pk for (pk,) in _rows_with("max_parallel_workers_per_gather", "0", "DEFAULT",
                                       *qs.values_list("pk", flat=True).query.sql_with_params())]


def _rows_with(setting: str, value: str, back: str, sql: str, params) -> list[tuple]:
    """``sql``'s rows with ``SET LOCAL setting = value`` for its time only: that ``SET``, the statement and
    ``SET LOCAL setting = back`` in one Query message (PostgreSQL runs it as one transaction; inside a caller's
    transaction the last ``SET`` undoes the first). No transaction of our own: a lost connection is answered
    once more (``caravan.dbfaults``)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL {setting} = {value}; {sql}; SET LOCAL {setting} = {back}", params)
        cursor.nextset()  # past the SET's (empty) result
        return cursor.fetchall()


def _text_matches(text: str, limit: int, *, typos: bool) -> tuple[list[int], list[int]]:
    """The ids of the best ``limit`` live customers whose search text holds ``text`` as typed (of the first
    RANK_AT_MOST of them), and of the best ``limit`` it is a word-similar match for (``%>``, of the first
    FUZZY_AT_MOST), the latter only when ``typos`` and none was found as typed (else empty). Best first: most
    similar to ``text``, then by name (code point order), then in the order found.

    Ranked in the statement (issue 22): before, every candidate came back to be sorted in Python (2,000 rows
    for a common syllable at 1,000,000 customers).

    One round trip (:func:`_rows_with`). Sequential scans are off meanwhile: the planner
    prices the trigram operators per row far too low and would read the whole table (0.6 s at 100,000 customers)
    where the trigram index takes milliseconds. The typo match is gated by a one-time filter on the first: not
    run at all when the text as typed found someone. Only the first matches are ranked (a typo finds a
    few hundred at most): a common syllable ("wang", "zha") matches a fifth of all customers, and ranking every
    one of them is what made typing slow. Each match is in a subquery the planner cannot merge (``OFFSET 0``),
    merged-away records left out after it: with ``merged_into_id IS NULL`` beside the match, the planner read
    every live row through the ``merged_into_id`` index and tested each (60 ms at 10,000 customers) instead of
    asking the trigram index (a few ms)."""
    best = 'ORDER BY similarity DESC, name COLLATE "C", found LIMIT %(limit)s'
    sql = f"""
        WITH as_typed AS MATERIALIZED (
            SELECT id, similarity(search_text, %(text)s) AS similarity, name, row_number() OVER () AS found FROM (
                SELECT id, name, search_text, merged_into_id FROM crm_customer WHERE search_text LIKE %(pattern)s
                OFFSET 0) AS matched
            WHERE merged_into_id IS NULL LIMIT %(at_most)s)
        (SELECT false, id FROM as_typed {best})"""
    if typos:
        sql += f"""
        UNION ALL (
            SELECT true, id FROM (
                SELECT id, similarity(search_text, %(text)s) AS similarity, name, row_number() OVER () AS found FROM (
                    SELECT id, name, search_text, merged_into_id FROM crm_customer WHERE search_text %%> %(text)s
                    OFFSET 0) AS matched
                WHERE merged_into_id IS NULL AND NOT EXISTS (SELECT FROM as_typed)
                LIMIT %(fuzzy_at_most)s) AS fuzzy {best})"""
    rows = _rows_with("enable_seqscan", "off", "on", sql, {
        "text": text, "pattern": "%" + connection.ops.prep_for_like_query(text) + "%",
        "at_most": max(RANK_AT_MOST, limit), "fuzzy_at_most": max(FUZZY_AT_MOST, limit), "limit": limit})
    return [pk for typo, pk in rows if not typo], [pk for typo, pk in rows if typo]


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
    links = Employment.objects.order_by("id")  # in the order they were made, as the list's line and the screen pop
    return (Customer.objects.select_related("owner", "preferences", "tier_status__tier")
            .prefetch_related("phones", "emails", "addresses", "family_dates", "loyalty", "documents",
                              Prefetch("employments", queryset=links.select_related("company")),
                              Prefetch("staff_links", queryset=links.select_related("person")))
            .get(pk=pk))


def screen_pop(*, number: str) -> dict:
    """What a call-center agent needs the moment a known number rings (R-CUST-9), for the page:
    the customer, its account manager and last contacts as model instances (the templates' own).

    One round trip (see ``_screen_pop_sql``): at 100,000 customers the four ORM queries this
    used to make cost more Python (query compiling, model building) than database time; prepared
    (``caravan.db.prepared``), since planning it cost PostgreSQL four times its run. Open
    complaints, recent trips and the service tier are the parts care, trips and tiers register
    (``crm.customers.screen_pop``)."""
    e164, row, shown = _screen_pop_row(number)
    if row is None:
        return {"number": e164, "customer": None}
    fields = Customer._meta.concrete_fields
    customer = Customer.from_db(connection.alias, [f.attname for f in fields], row[:len(fields)])
    owner_name, owner_email, companies, contacts = row[len(fields):len(fields) + 4]
    customer.owner = _user(customer.owner_id, owner_name, owner_email)
    return {"number": e164, "customer": customer, "companies": companies,
            "last_contacts": [_contact(c) for c in contacts or []], **shown, "now": timezone.now()}


def screen_pop_data(*, number: str) -> dict:
    """The same screen pop as plain data, for the API and the telephony systems that call it many
    times a second: the same statement and parts as :func:`screen_pop`, read straight from its row.
    Building the customer, colleagues and contacts as model instances cost ~0.1 ms of the API call's
    ~1.6 ms of Python (issue 22, docs/performance.md), for five of their fields.

    ``customer`` is None for an unknown number, else ``{id, name, latin_name, kind, tags, owner}``
    (``owner``: ``{id, full_name}`` or None); ``last_contacts``: ``{at, channel, summary, staff}``
    (the summary in the active language, ``staff`` the colleague's full name or None)."""
    e164, row, shown = _screen_pop_row(number)
    if row is None:
        return {"number": e164, "customer": None}
    at = _customer_columns()
    owner_id = row[at["owner_id"]]
    owner_name, _owner_email, companies, contacts = row[len(at):len(at) + 4]
    return {"number": e164, "companies": companies,
            "customer": {"id": row[at["id"]], "name": row[at["name"]], "kind": row[at["kind"]], "tags": row[at["tags"]],
                         "latin_name": format_latin_name(row[at["latin_surname"]], row[at["latin_given"]]),
                         "owner": {"id": owner_id, "full_name": owner_name} if owner_id else None},
            "last_contacts": [{"at": datetime.fromisoformat(c["at"]), "channel": c["channel"],
                               "summary": texts.display(c["text_kind"], c["text_params"], c["summary"]),
                               "staff": c["staff_full_name"] if c["staff_id"] else None}
                              for c in contacts or []], **shown}


@cache
def _customer_columns() -> dict[str, int]:
    """Where each of the customer's attributes is in the screen pop's row (its first columns)."""
    return {f.attname: i for i, f in enumerate(Customer._meta.concrete_fields)}


def _screen_pop_row(number: str) -> tuple[str, tuple | None, dict]:
    """The number in E.164 (ValidationError if it is none), the statement's row (None: nobody on file has
    the number) and the other apps' parts as they show them (``{key: shaped value}``, after the customer's
    columns and its four own)."""
    e164 = phone_e164(number, require_agency().default_region)
    parts = screen_pop_parts.parts()
    with connection.cursor() as cursor:
        execute_prepared(cursor, _screen_pop_sql(parts), [e164])
        row = cursor.fetchone()
    if row is None:
        return e164, None, {}
    values = row[len(_customer_columns()) + 4:]
    return e164, row, {part.key: part.shape(value) for part, value in zip(parts, values, strict=True)}


@cache
def _screen_pop_sql(parts) -> str:
    """The caller by number, following merges to the surviving record; its account manager,
    active companies, last five contacts (with the colleague), then the other apps' parts."""
    columns = ", ".join(f'c."{f.column}"' for f in Customer._meta.concrete_fields)
    return f"""
        WITH RECURSIVE chain(id, merged_into_id, depth) AS (
            SELECT c.id, c.merged_into_id, 0 FROM crm_phone p JOIN crm_customer c ON c.id = p.customer_id
            WHERE p.number = %s
          UNION ALL
            SELECT c.id, c.merged_into_id, chain.depth + 1 FROM crm_customer c JOIN chain ON c.id = chain.merged_into_id
            WHERE chain.depth < 20
        )
        SELECT {columns}, o.full_name, o.email,
          ARRAY(SELECT co.name FROM crm_employment e JOIN crm_customer co ON co.id = e.company_id
                WHERE e.person_id = c.id AND e.active ORDER BY e.id),
          (SELECT json_agg(x) FROM (
              SELECT ct.*, s.full_name AS staff_full_name, s.email AS staff_email
              FROM crm_contact ct LEFT JOIN accounts_user s ON s.id = ct.staff_id
              WHERE ct.customer_id = c.id ORDER BY ct.at DESC, ct.id DESC LIMIT 5) x)
          {"".join(f", ({part.sql})" for part in parts)}
        FROM chain JOIN crm_customer c ON c.id = chain.id LEFT JOIN accounts_user o ON o.id = c.owner_id
        WHERE chain.merged_into_id IS NULL
        LIMIT 1"""


def _user(pk, full_name, email):
    """A colleague with just the fields shown (others load on access)."""
    if not pk:
        return None
    data = {"id": pk, "full_name": full_name, "email": email}
    names = [f.attname for f in User._meta.concrete_fields if f.attname in data]  # from_db wants model order
    return User.from_db(connection.alias, names, [data[name] for name in names])


def _contact(data: dict) -> Contact:
    fields = Contact._meta.concrete_fields
    contact = Contact.from_db(connection.alias, [f.attname for f in fields],
                              [f.to_python(data[f.column]) for f in fields])
    if data["staff_full_name"] is not None or contact.staff_id is None:
        contact.staff = _user(contact.staff_id, data["staff_full_name"], data["staff_email"])
    return contact
