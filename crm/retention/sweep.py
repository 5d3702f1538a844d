"""A person's identifiers in an agency schema's text, found and replaced by reading PostgreSQL's catalogue.

Erasure anonymises the rows it knows by rule (``services.RULES``); what people typed elsewhere — a
phone number in a payment note, an e-mail in an import's error report, a passport number in a visa
checklist note — is caught here. ``text_columns()`` lists every text, character, JSON and text-array
column of every table of the active schema (``information_schema``), so a table added later is
swept without a change here.

Patterns are PostgreSQL regular expressions (ARE), matched case-insensitively:

- ``name_pattern``: the name as written; Latin names on word boundaries, so "Li" never eats "Lisbon".
- ``digits_pattern``: a phone's national digits with any spaces, dashes, dots or brackets between
  them and no digit either side ("138 0013 8000", "138-0013-8000" and "+8613800138000" all match).
- ``code_pattern``: a document or member number, letters and digits with optional separators.
- ``literal_pattern``: an e-mail address, as is.
"""
import re

from django.db import connection

REPLACEMENT = "[erased]"
_SEP = r"[\s\-.()/]*"
# Tables never swept: Django's own bookkeeping.
EXCLUDED_TABLES = ("django_migrations",)


def _escape(text: str) -> str:
    # Python's re.escape backslashes every special character; in an ARE a backslash before a
    # non-alphanumeric character is that character, so the result is a literal in both.
    return re.escape(text)


def name_pattern(name: str) -> str | None:
    name = " ".join((name or "").split())
    if len(name) < 2:
        return None
    body = r"\s+".join(_escape(part) for part in name.split(" "))
    return rf"\m{body}\M" if name.isascii() else body


def digits_pattern(digits: str) -> str | None:
    digits = re.sub(r"\D", "", digits or "")
    if len(digits) < 6:
        return None
    return r"(?<![0-9])" + _SEP.join(digits) + r"(?![0-9])"


def code_pattern(code: str) -> str | None:
    code = re.sub(r"[^0-9A-Za-z]", "", code or "")
    if len(code) < 5:
        return None
    return r"(?<![0-9A-Za-z])" + _SEP.join(code) + r"(?![0-9A-Za-z])"


def literal_pattern(text: str) -> str | None:
    text = (text or "").strip()
    return _escape(text) if len(text) >= 5 else None


def combine(patterns) -> str | None:
    patterns = sorted({p for p in patterns if p})
    return "|".join(f"(?:{p})" for p in patterns) or None


def text_columns(tables: list[str] | None = None) -> dict[str, list[tuple[str, str, int | None]]]:
    """{table: [(column, kind, max length)]} for the active schema's tables; kind is ``text``,
    ``json``, ``jsonb`` or ``array`` (of text). ``tables`` narrows the answer."""
    sql = """
        SELECT c.table_name, c.column_name,
               CASE WHEN c.data_type IN ('json', 'jsonb') THEN c.data_type
                    WHEN c.data_type = 'ARRAY' THEN 'array' ELSE 'text' END,
               c.character_maximum_length
        FROM information_schema.columns c
        JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
        WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
          AND (c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')
               OR (c.data_type = 'ARRAY' AND c.udt_name IN ('_text', '_varchar', '_bpchar')))
          AND NOT c.table_name = ANY(%s)
        ORDER BY c.table_name, c.ordinal_position"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(EXCLUDED_TABLES)])
        rows = cursor.fetchall()
    out: dict[str, list] = {}
    for table, column, kind, length in rows:
        if tables is None or table in tables:
            out.setdefault(table, []).append((column, kind, length))
    return out


def _set_and_text(column: str, kind: str, length: int | None) -> tuple[str, str]:
    """The SET clause replacing the pattern in ``column``, and the column as text for the match."""
    q = connection.ops.quote_name(column)
    if kind in ("json", "jsonb"):
        return f"{q} = regexp_replace({q}::text, %(p)s, %(r)s, 'gi')::{kind}", f"{q}::text"
    if kind == "array":
        return (f"{q} = ARRAY(SELECT regexp_replace(e, %(p)s, %(r)s, 'gi') FROM unnest({q}) WITH ORDINALITY u(e, n) "
                f"ORDER BY n)", f"array_to_string({q}, ' ')")
    value = f"regexp_replace({q}, %(p)s, %(r)s, 'gi')"
    if length:
        value = f"left({value}, {int(length)})"  # never longer than the column holds
    return f"{q} = {value}", q


def replace(pattern: str | None, *, rows: dict[str, tuple[str, list]] | None = None,
            replacement: str = REPLACEMENT) -> dict[str, int]:
    """Replace ``pattern`` in every text column of the schema's tables (``rows`` is None), or only in
    the given rows: ``{table: (primary key column, [keys])}``. Returns {table: rows changed}."""
    if not pattern:
        return {}
    columns = text_columns(list(rows) if rows is not None else None)
    changed = {}
    with connection.cursor() as cursor:
        for table, cols in columns.items():
            sets, texts = zip(*(_set_and_text(*col) for col in cols))
            params = {"p": pattern, "r": replacement}
            # One match per row over all its text columns (joined by a unit separator, which no
            # pattern crosses): half the time of one match per column on a large table.
            where = f"concat_ws(chr(31), {', '.join(texts)}) ~* %(p)s"
            if rows is not None:
                key, ids = rows[table]
                if not ids:
                    continue
                where = f"{connection.ops.quote_name(key)} = ANY(%(ids)s) AND ({where})"
                params["ids"] = list(ids)
            cursor.execute(f"UPDATE {connection.ops.quote_name(table)} SET {', '.join(sets)} WHERE {where}", params)
            if cursor.rowcount:
                changed[table] = cursor.rowcount
    return changed
