"""Statements PostgreSQL parses and plans once per connection (issue 22): :func:`execute_prepared`.

Django's psycopg cursors bind parameters on the client and never prepare, so PostgreSQL parses and
plans every statement again: for the screen pop's one statement that was 1.2–1.7 ms of its CPU
against 0.2–0.3 ms to run it, on every call. Here the first call on a connection sends
``PREPARE name AS …; EXECUTE name(…)`` in one message, later calls only ``EXECUTE name(…)``, followed
by the statement's text in a comment (what Django's query log, query captures and
``pg_stat_activity`` show; the server skips a comment for a few microseconds).
:func:`execute_prepared_all` does the same for several statements sent in one message (the webhook's
event claim, assignment rules and duplicates read).

Why a prepared statement cannot serve one agency another's rows: PostgreSQL parses and plans it
again whenever ``search_path`` differs from the one it was planned under (documented under
PREPARE), and a change to a table it reads invalidates it too; the unqualified tables resolve to the
active agency's schema exactly as a plain statement's do. A connection that serves agency after
agency pays the planning again at each change, as it did before (``tests/test_prepared_statements.py``
alternates two agencies on one connection).

Only on ``caravan.db.session`` (direct PostgreSQL, or PgBouncer in session mode, whose reset query
drops them with the client): behind PgBouncer in transaction mode (``caravan.db``) a statement
prepared on one server connection is missing on the next, so there it is sent as it is.
"""
import itertools
import re
import secrets

_PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[s%]")


def execute_prepared(cursor, sql: str, params) -> None:
    """``cursor.execute(sql, params)`` (``%s`` placeholders with a list, or ``%(name)s`` with a dict), the
    statement prepared once per connection where the engine allows it. The cursor is then on the statement's rows."""
    db = cursor.db
    if not params or not getattr(db, "prepares_statements", False):
        cursor.execute(sql, params)
        return
    names = _names(db)
    known = names.get(sql)
    if known is not None:
        cursor.execute(known, params)
        return
    prepare, execute = _prepared(names, sql)
    cursor.execute(f"{prepare}; {execute}", params)
    cursor.nextset()  # past the PREPARE's empty result
    names[sql] = execute


def execute_prepared_all(cursor, statements: list[tuple[str, list]]) -> None:
    """Several statements (``%s`` placeholders, each with its list of parameters) in one message, each
    prepared once per connection as :func:`execute_prepared` prepares one: the first time their
    ``PREPARE``s lead the message, then their ``EXECUTE``s in order. The cursor is then on the first
    statement's rows (``cursor.nextset()`` for the next one's). Where the engine does not prepare, the
    statements are sent as they are, in one message all the same."""
    db = cursor.db
    params = [value for _sql, given in statements for value in given]
    if not getattr(db, "prepares_statements", False):
        cursor.execute("; ".join(sql for sql, _given in statements), params)
        return
    names = _names(db)
    prepares, executes, made = [], [], {}
    for sql, _given in statements:
        known = names.get(sql) or made.get(sql)
        if known is None:
            prepare, known = _prepared(names, sql)
            prepares.append(prepare)
            made[sql] = known
        executes.append(known)
    cursor.execute("; ".join([*prepares, *executes]), params)
    for _prepare in prepares:  # past the PREPAREs' empty results
        cursor.nextset()
    names.update(made)


def _prepared(names: dict, sql: str) -> tuple[str, str]:
    """The ``PREPARE`` of ``sql`` under a fresh name, and the ``EXECUTE`` that runs it from then on. A fresh name for
    every attempt: if the message fails after its PREPARE, that name is never reused."""
    text, arguments = _numbered(sql)
    name = f"caravan_{names['']}_{next(names[None])}"
    execute = f"EXECUTE {name}{arguments}"
    if "/*" not in text and "*/" not in text:  # the statement's text in a comment: logs and query captures stay readable
        execute += f" /* {text} */"
    return f"PREPARE {name} AS {text}", execute


def _names(db) -> dict:
    """The statements prepared on ``db``'s current PostgreSQL connection (a new connection starts empty)."""
    held = getattr(db, "_caravan_prepared", None)
    if held is None or held[0] is not db.connection:
        # '' holds a random tag, None the counter: names unique even on a reused server connection.
        held = (db.connection, {"": secrets.token_hex(4), None: itertools.count(1)})
        db._caravan_prepared = held
    return held[1]


def _numbered(sql: str) -> tuple[str, str]:
    """The text with ``$1``, ``$2``… for its placeholders (``%%`` stays: the whole message is still formatted
    with the parameters), and the EXECUTE's argument list: ``(%s, %s)``, or ``(%(a)s, %(b)s)`` by first use."""
    order: list = []

    def number(match):
        if match.group() == "%%":
            return "%%"
        key = match.group(1)
        if key is None or key not in order:
            order.append(key)
            return f"${len(order)}"
        return f"${order.index(key) + 1}"

    text = _PLACEHOLDER.sub(number, sql)
    arguments = ", ".join("%s" if key is None else f"%({key})s" for key in order)
    return text, f"({arguments})" if order else ""
