"""Customer value writes (R-VAL-1 … R-VAL-5): the nightly RFM scores, payment behaviour, segments,
lifetime value and early warnings.

``value_run`` is one read, one fit and one computation: the per-customer summary in weeks is read
(``_SUMMARY_SQL``), BG/NBD + Gamma-Gamma are fitted on it (``crm.value.lifetime``), then one
statement (``_RFM_SQL``) computes every customer's measures, payment behaviour, RFM quintiles,
predictions, segment and quadrant into a temporary table, from which three hash-joined
statements delete, update (only the rows that changed) and insert. Then the early
warnings (``warnings_run``), opened and closed set-based.

Trips count when confirmed or completed, for their buyer (``Trip.customer``), dated by
``confirmed_at`` (else ``created_at``); a trip's value is the sum of its items' sell price
(revenue) or sell − cost (margin), at face value in the agency currency.
"""
import time
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.roles import Cap
from caravan.money import CENT
from caravan.tenancy import require_agency
from crm.customers.models import Customer
from crm.care.models import Complaint
from crm.pipeline.models import Task
from crm.pipeline.services import tasks_create_sql
from crm.trips.models import ItineraryItem, Payment, Trip

from .models import CustomerValue, LifetimeFit, ValueSettings, ValueWarning

WEEK = 7 * 24 * 3600
HORIZON_WEEKS = 52
MIN_FIT_CUSTOMERS = 50  # below this a fit says nothing; predictions stay empty


def value_settings() -> ValueSettings:
    return ValueSettings.objects.get_or_create(pk=1)[0]


# Every counted trip once, with its value (read by the summary and the RFM statement alike).
_TRIPS_SQL = """
CREATE TEMPORARY TABLE value_trips ON COMMIT DROP AS
WITH item_sums AS (  -- narrow first: one row per trip from the booking lines alone
    SELECT trip_id, sum(sell) AS revenue, sum(sell - cost) AS margin FROM {item} GROUP BY trip_id
)
SELECT t.id AS trip_id, t.customer_id, coalesce(t.confirmed_at, t.created_at) AS at, t.balance_due_on,
       coalesce(s.revenue, 0) AS revenue, coalesce(s.margin, 0) AS margin
FROM {trip} t LEFT JOIN item_sums s ON s.trip_id = t.id
JOIN {customer} c ON c.id = t.customer_id AND c.merged_into_id IS NULL
WHERE t.status IN ('confirmed', 'completed') AND coalesce(t.confirmed_at, t.created_at) <= %(now)s
"""

_RFM_SQL = """
CREATE TEMPORARY TABLE value_new ON COMMIT DROP AS
WITH trip_values AS (SELECT * FROM value_trips), settled AS (  -- the day each balance due in the window was paid in full (running net payments)
    SELECT trip_id, min(received_on) AS paid_on
    FROM (SELECT p.trip_id, p.received_on, v.revenue,
                 sum(CASE WHEN p.kind = 'refund' THEN -p.amount ELSE p.amount END)
                     OVER (PARTITION BY p.trip_id ORDER BY p.received_on, p.id) AS paid_so_far
          FROM {payment} p JOIN trip_values v ON v.trip_id = p.trip_id
          WHERE v.balance_due_on BETWEEN %(since)s::date AND %(today)s) running
    WHERE paid_so_far >= revenue
    GROUP BY trip_id
), lateness AS (  -- days between the due day and the day paid in full (today while unpaid), on average
    SELECT v.customer_id, avg(greatest(0, coalesce(s.paid_on, %(today)s) - v.balance_due_on)) AS days_late
    FROM trip_values v LEFT JOIN settled s ON s.trip_id = v.trip_id
    WHERE v.balance_due_on BETWEEN %(since)s::date AND %(today)s AND v.revenue > 0
    GROUP BY v.customer_id
), per_customer AS (
    SELECT v.customer_id, min(v.at) AS first_at, max(v.at) AS last_at, count(*) AS trips_total,
           sum(v.revenue) AS revenue_total, sum(v.margin) AS margin_total,
           count(*) FILTER (WHERE v.at >= %(since)s) AS frequency,
           coalesce(sum(CASE WHEN %(margin)s THEN v.margin ELSE v.revenue END) FILTER (WHERE v.at >= %(since)s), 0)
               AS monetary,
           max(v.at) FILTER (WHERE v.at >= %(since)s) AS last_in_window
    FROM trip_values v
    GROUP BY v.customer_id
), predicted AS (
    SELECT * FROM unnest(%(ids)s::integer[], %(alive)s::float8[], %(trips)s::float8[], %(values)s::numeric[])
        AS u(customer_id, p_alive, trips, value)
), scored AS (  -- 1 + floor(5 × percent rank): quintiles in which equal values share a score
    SELECT p.*, l.days_late, coalesce(l.days_late > %(late_days)s, false) AS late, u.p_alive, u.trips, u.value,
           CASE WHEN p.frequency > 0 THEN least(5, 1 + floor(5 * percent_rank() OVER (
               PARTITION BY p.frequency > 0 ORDER BY p.last_in_window))) END AS r,
           CASE WHEN p.frequency > 0 THEN least(5, 1 + floor(5 * percent_rank() OVER (
               PARTITION BY p.frequency > 0 ORDER BY p.frequency))) END AS f,
           CASE WHEN p.frequency > 0 THEN least(5, 1 + floor(5 * percent_rank() OVER (
               PARTITION BY p.frequency > 0 ORDER BY p.monetary))) END AS m,
           CASE WHEN u.value IS NULL THEN 0
                ELSE least(5, 1 + floor(5 * percent_rank() OVER (PARTITION BY u.value IS NULL ORDER BY u.value))) END
               AS ev
    FROM per_customer p LEFT JOIN lateness l ON l.customer_id = p.customer_id
    LEFT JOIN predicted u ON u.customer_id = p.customer_id
), classed AS (  -- segments and quadrants (docs/customer-value.md); a late payer's M counts one lower
    SELECT s.*, greatest(1, s.m - CASE WHEN s.late THEN 1 ELSE 0 END) AS m1 FROM scored s
)
SELECT customer_id, first_at AS first_trip_at, last_at AS last_trip_at, trips_total, revenue_total, margin_total,
       frequency, monetary, r AS r_score, f AS f_score, m AS m_score, days_late, late AS late_payer,
       CASE WHEN r IS NULL THEN 'low'
            WHEN f + m1 >= 8 AND r >= 3 THEN 'most_valuable'
            WHEN f + m1 >= 6 AND r <= 2 THEN 'declining'
            WHEN r >= 3 AND (f + m1 >= 5 OR ev >= 4) THEN 'growth'
            ELSE 'low' END AS segment,
       CASE WHEN r IS NULL THEN NULL  -- not scored: in no quadrant (selectors.in_quadrants)
            ELSE (CASE WHEN m1 >= 4 THEN 'large' ELSE 'small' END) || '_' ||
                 (CASE WHEN f >= 3 AND r >= 3 THEN 'high' ELSE 'low' END) END AS quadrant,
       p_alive, trips AS expected_trips_12m, value AS expected_value_12m
FROM classed
"""

# Written from ``value_new`` by a hash join, not row by row: rows gone, rows changed, rows new.
_COLUMNS = ("first_trip_at", "last_trip_at", "trips_total", "revenue_total", "margin_total", "frequency", "monetary",
            "r_score", "f_score", "m_score", "days_late", "late_payer", "segment", "quadrant", "p_alive",
            "expected_trips_12m", "expected_value_12m")
_WRITE_SQL = (
    """DELETE FROM {value} cv WHERE NOT EXISTS (SELECT 1 FROM value_new n WHERE n.customer_id = cv.customer_id)""",
    "UPDATE {value} cv SET " + ", ".join(f"{c} = n.{c}" for c in _COLUMNS) + ", computed_at = %(now)s "
    "FROM value_new n WHERE n.customer_id = cv.customer_id AND ("
    + ", ".join(f"cv.{c}" for c in _COLUMNS) + ") IS DISTINCT FROM (" + ", ".join(f"n.{c}" for c in _COLUMNS) + ")",
    "INSERT INTO {value} (customer_id, " + ", ".join(_COLUMNS) + ", computed_at) SELECT customer_id, "
    + ", ".join(_COLUMNS) + ", %(now)s FROM value_new n "
    "WHERE NOT EXISTS (SELECT 1 FROM {value} cv WHERE cv.customer_id = n.customer_id)",
)
# A nightly batch over the whole agency: enough memory that its sorts and hashes stay off disk.
WORK_MEM = "64MB"

# Per customer, in weeks: repeat trips x, recency t_x (first → last trip), age T (first trip → now),
# and the mean value of the repeat trips (the first trip excluded, as Gamma-Gamma wants).
_SUMMARY_SQL = """
SELECT customer_id, count(*) - 1,
       extract(epoch FROM max(at) - min(at)) / %(week)s,
       extract(epoch FROM %(now)s - min(at)) / %(week)s,
       CASE WHEN count(*) > 1
            THEN (sum(CASE WHEN %(margin)s THEN margin ELSE revenue END)
                  - (array_agg(CASE WHEN %(margin)s THEN margin ELSE revenue END ORDER BY at))[1]) / (count(*) - 1)
            ELSE 0 END
FROM value_trips
GROUP BY customer_id
"""

def _sql(template: str) -> str:
    return template.format(trip=Trip._meta.db_table, item=ItineraryItem._meta.db_table,
                           payment=Payment._meta.db_table, customer=Customer._meta.db_table,
                           value=CustomerValue._meta.db_table, warning=ValueWarning._meta.db_table,
                           complaint=Complaint._meta.db_table, task=Task._meta.db_table)


def value_run(*, now=None) -> dict:
    """Recompute every customer's RFM scores, segments and lifetime value, then the early warnings
    (nightly, or on demand). Returns counts, and the seconds each step took (for the log and the bench)."""
    now = now or timezone.now()
    rules = value_settings()
    since = now - timedelta(days=round(rules.window_months * 365.25 / 12))
    margin = rules.monetary_basis == ValueSettings.Basis.MARGIN
    seconds, clock = {}, time.perf_counter()

    def lap(step):
        nonlocal clock
        seconds[step] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        cursor.execute("DROP TABLE IF EXISTS value_trips, value_new")  # a second run in one transaction (tests)
        cursor.execute(_sql(_TRIPS_SQL), {"now": now})
        lap("trips")
        cursor.execute(_sql(_SUMMARY_SQL), {"now": now, "margin": margin, "week": WEEK})
        rows = cursor.fetchall()
        fit, predicted = _fit_and_score(rows, now) if len(rows) >= MIN_FIT_CUSTOMERS else (None, {})
        lap("lifetime")
        cursor.execute(_sql(_RFM_SQL), {"now": now, "since": since, "margin": margin, "late_days": rules.late_days,
                                        "today": timezone.localdate(now), **_predictions(predicted)})
        for statement in _WRITE_SQL:
            cursor.execute(_sql(statement), {"now": now})
        lap("rfm_segments")
        ValueSettings.objects.filter(pk=rules.pk).update(last_run_at=now)
        scored = CustomerValue.objects.count()
    warnings = warnings_run(now=now, rules=rules)
    lap("warnings")
    return {"customers": scored, "fitted": fit is not None, "warnings": warnings, "seconds": seconds}


def _predictions(predicted: dict) -> dict:
    return {key: predicted.get(key, []) for key in ("ids", "alive", "trips", "values")}


def _fit_and_score(rows, now) -> tuple[LifetimeFit | None, dict]:
    """Fit the agency's model on its customers' summary and predict each one's next 12 months."""
    # numpy and scipy (about 80 MB) only in the nightly job's worker, never in a web process.
    import numpy as np

    from .lifetime import fit_bg_nbd, fit_gamma_gamma

    ids = np.array([row[0] for row in rows], dtype=np.int64)
    x, t_x, T, m = (np.array([float(row[i]) for row in rows]) for i in range(1, 5))
    T = np.maximum(T, t_x + 1e-6)  # a trip confirmed this very second: age just above its recency
    try:
        bg = fit_bg_nbd(x, t_x, T)
    except ValueError:
        return None, {}
    try:
        gg = fit_gamma_gamma(x, m)
    except ValueError:
        gg = None
    trips = bg.expected_purchases(HORIZON_WEEKS, x, t_x, T)
    alive = bg.p_alive(x, t_x, T)
    spend = gg.expected_spend(x, m) if gg else np.where(x > 0, m, np.nan)

    def finite(values) -> list:
        return [float(v) if np.isfinite(v) else None for v in values]

    fit = LifetimeFit.objects.create(
        fitted_at=now, customers=len(rows), repeat_customers=int((x > 0).sum()), r=bg.r, alpha=bg.alpha, a=bg.a,
        b=bg.b, bg_log_likelihood=bg.log_likelihood, p=gg.p if gg else None, q=gg.q if gg else None,
        gamma=gg.gamma if gg else None, gg_log_likelihood=gg.log_likelihood if gg else None,
        actual_repeat_trips=int(x.sum()), expected_repeat_trips=float(bg.expected_purchases_new(T).sum()))
    values = [None if v is None else Decimal(str(round(v, 2))) for v in finite(trips * spend)]
    return fit, {"ids": ids.tolist(), "alive": finite(alive), "trips": finite(trips), "values": values}


# --- early warnings (R-VAL-5) ------------------------------------------------------------------------

# Every condition, one row per (customer, kind) that holds now; ``raise_`` says whether it may open a
# new warning (dormancy only opens in the 90 days after the threshold: older lapses are the win-back
# pool, not news) — a warning already open stays open while its condition holds at all.
_CONDITIONS_SQL = """
CREATE TEMPORARY TABLE value_conditions ON COMMIT DROP AS
WITH trip_values AS (
    SELECT t.customer_id, coalesce(t.confirmed_at, t.created_at) AS at,
           CASE WHEN %(margin)s THEN coalesce(sum(i.sell - i.cost), 0) ELSE coalesce(sum(i.sell), 0) END AS value
    FROM {trip} t LEFT JOIN {item} i ON i.trip_id = t.id
    WHERE t.status IN ('confirmed', 'completed') AND coalesce(t.confirmed_at, t.created_at) > %(two_years_ago)s
      AND coalesce(t.confirmed_at, t.created_at) <= %(now)s
    GROUP BY t.id
), spend AS (
    SELECT customer_id, coalesce(sum(value) FILTER (WHERE at > %(year_ago)s), 0) AS recent,
           coalesce(sum(value) FILTER (WHERE at <= %(year_ago)s), 0) AS before
    FROM trip_values GROUP BY customer_id
), key_line AS (  -- key customers: the top fifth by value in the 12 months before the last 12
    SELECT percentile_cont(0.8) WITHIN GROUP (ORDER BY before) AS line FROM spend WHERE before > 0
), complaints AS (
    SELECT customer_id, count(*) FILTER (WHERE created_at > %(complaints_since)s) AS recent,
           count(*) FILTER (WHERE created_at <= %(complaints_since)s) AS before
    FROM {complaint} WHERE created_at > %(complaints_before)s AND created_at <= %(now)s
    GROUP BY customer_id
)
SELECT s.customer_id, 'spend_drop'::text AS kind, true AS raise_,
       jsonb_build_object('before', s.before, 'recent', s.recent) AS details
FROM spend s, key_line k
WHERE s.before > 0 AND s.before >= k.line AND s.recent < s.before * (100 - %(drop_share)s) / 100.0
UNION ALL
SELECT customer_id, 'complaints', true, jsonb_build_object('recent', recent, 'before', before)
FROM complaints WHERE recent >= %(complaints_min)s AND recent > before
UNION ALL
SELECT customer_id, 'dormant', last_trip_at >= %(dormant_since)s - interval '90 days',
       jsonb_build_object('last_trip', to_char(last_trip_at, 'YYYY-MM-DD'), 'trips', trips_total)
FROM {value} WHERE last_trip_at < %(dormant_since)s
UNION ALL
SELECT customer_id, 'at_risk', true, jsonb_build_object('p_alive', round((p_alive * 100)::numeric))
FROM {value} WHERE trips_total >= 2 AND p_alive < %(p_alive_floor)s AND last_trip_at >= %(dormant_since)s
"""

_CLOSE_SQL = """
UPDATE {warning} w SET closed_at = %(now)s
WHERE w.closed_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM value_conditions v WHERE v.customer_id = w.customer_id AND v.kind = w.kind)
"""

_OPEN_SQL = """
WITH opened AS (
    INSERT INTO {warning} (customer_id, kind, opened_at, details)
    SELECT v.customer_id, v.kind, %(now)s, v.details
    FROM value_conditions v JOIN {customer} c ON c.id = v.customer_id AND c.merged_into_id IS NULL
    WHERE v.raise_
    ON CONFLICT (customer_id, kind) WHERE closed_at IS NULL DO NOTHING
    RETURNING id, customer_id, kind
), tasks AS (
""" + tasks_create_sql("""
    SELECT (%(titles)s::jsonb ->> o.kind) || ': ' || c.name, 'value_' || o.kind, jsonb_build_object('name', c.name),
           '', c.owner_id, c.id, %(due)s, 'value-warning:' || o.id, %(now)s
    FROM opened o JOIN {customer} c ON c.id = o.customer_id""", kind=Task.Kind.VALUE_WARNING, texts=True) + """
)
SELECT kind FROM opened
"""

# A statement does not see the rows its own CTEs insert, so the tasks are linked in a second one.
_LINK_SQL = """
UPDATE {warning} w SET task_id = t.id FROM {task} t
WHERE w.task_id IS NULL AND w.opened_at = %(now)s AND t.key = 'value-warning:' || w.id
"""
WARNING_TASK_DUE = timedelta(days=2)


def warnings_run(*, now=None, rules: ValueSettings | None = None) -> dict:
    """Open the early warnings whose condition newly holds (each with a task for the account owner),
    close those whose condition cleared. Idempotent: a second run the same night changes nothing.
    Returns {kind: warnings opened}."""
    import json

    agency = require_agency()
    now = now or timezone.now()
    rules = rules or value_settings()
    with translation.override(agency.language):
        titles = {kind.value: str(kind.label) for kind in ValueWarning.Kind}
    params = {
        "now": now, "margin": rules.monetary_basis == ValueSettings.Basis.MARGIN,
        "year_ago": now - timedelta(days=365), "two_years_ago": now - timedelta(days=730),
        "drop_share": rules.spend_drop_share,
        "complaints_since": now - timedelta(days=rules.complaints_window_days),
        "complaints_before": now - timedelta(days=2 * rules.complaints_window_days),
        "complaints_min": rules.complaints_rise_min, "dormant_since": now - timedelta(days=rules.dormant_days),
        "p_alive_floor": rules.at_risk_p_alive / 100, "titles": json.dumps(titles), "due": now + WARNING_TASK_DUE,
    }
    opened = {kind.value: 0 for kind in ValueWarning.Kind}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS value_conditions")  # a second run in one transaction (tests)
        cursor.execute(_sql(_CONDITIONS_SQL), params)
        cursor.execute(_sql(_CLOSE_SQL), params)
        cursor.execute(_sql(_OPEN_SQL), params)
        for (kind,) in cursor.fetchall():
            opened[kind] += 1
        cursor.execute(_sql(_LINK_SQL), params)
    return opened


# --- settings and "recompute now" ------------------------------------------------------------------

SETTING_LIMITS = {"window_months": (3, 120), "late_days": (1, 365), "spend_drop_share": (5, 95),
                  "complaints_window_days": (7, 365), "complaints_rise_min": (1, 100), "dormant_days": (30, 1095),
                  "at_risk_p_alive": (1, 99)}


def settings_save(*, actor, **fields) -> ValueSettings:
    """Change how value is measured and when warnings fire (agency admins). Field errors, nothing half-saved."""
    if not actor.can(Cap.SETTINGS_MANAGE):
        raise PermissionDenied
    errors = {}
    for name, (low, high) in SETTING_LIMITS.items():
        if name in fields and not low <= int(fields[name]) <= high:
            errors[name] = _("Between %(low)s and %(high)s.") % {"low": low, "high": high}
    if "monetary_basis" in fields and fields["monetary_basis"] not in ValueSettings.Basis.values:
        errors["monetary_basis"] = _("Choose revenue or margin.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        rules = ValueSettings.objects.select_for_update().get(pk=value_settings().pk)
        for name, value in fields.items():
            if name in SETTING_LIMITS or name == "monetary_basis":
                setattr(rules, name, value)
        rules.save()
    return rules


def value_queue(*, actor) -> None:
    """"Recompute now": queue the value computation for this agency (it runs in the worker)."""
    if not (actor.can(Cap.SETTINGS_MANAGE) or actor.can(Cap.REPORTS_VIEW)):
        raise PermissionDenied
    from .tasks import compute

    transaction.on_commit(compute.delay)
