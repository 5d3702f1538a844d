"""One feed run: fetch (or take the pushed file) → parse (the feed's connector) → validate against
reference data → upsert, in one transaction.

- A message refused as a whole (not the format, hostile, malformed, cut off, too big) fails the run
  and the previous inventory stays exactly as it was: nothing is written until the message has been
  read to its end, and everything is written in the same transaction as the run's result.
- A bad record is quarantined with its reason and never stops the good ones.
- Rows go to a temporary staging table by COPY in batches, then one set-based upsert moves them:
  hotel rates merge (OTA notifications are deltas: a rate and an availability for the same night
  meet in one row), a flight feed's offers are replaced (each message is the supplier's current set).
"""
import json
import logging
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

import sentry_sdk
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from caravan import unpack

from . import reference
from .connectors import CONNECTORS, HotelRow, MessageRefused, OfferRow, Rejected
from .connectors.base import HotelInfo
from .models import Feed, FeedRun, FlightOffer, Hotel, HotelRate, QuarantinedRecord

log = logging.getLogger(__name__)
BATCH = 20_000
MAX_NIGHTS = 400  # a date range longer than this in one record is refused
MAX_AMOUNT = Decimal("100000000")


class LimitedReader:
    """Refuses to read past ``limit`` bytes (a supplier sending an endless or huge file)."""

    def __init__(self, raw: BinaryIO, limit: int):
        self.raw, self.limit, self.count = raw, limit, 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size if size is not None and size >= 0 else self.limit + 1 - self.count)
        self.count += len(data)
        if self.count > self.limit:
            raise MessageRefused(f"The message is larger than the limit of {self.limit:,} bytes (FEED_MAX_BYTES).")
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        """A connector may rewind (the JSON one peeks at the structure first): count from there."""
        self.count = self.raw.seek(offset, whence)
        return self.count


def _message(raw: BinaryIO):
    """The message to parse: as stored (at most ``FEED_MAX_BYTES``), or, when it is gzipped (suppliers
    send large files so, and a pull asks for it), inflated within ``FEED_MAX_UNPACKED_BYTES`` and
    ``UPLOAD_MAX_RATIO`` (caravan.unpack): a small bomb never becomes gigabytes in the worker."""
    opened = unpack.open_maybe_gzip(raw)
    return LimitedReader(raw, settings.FEED_MAX_BYTES) if opened is raw else opened


class _Writer:
    def __init__(self, feed: Feed, run: FeedRun):
        self.feed, self.run = feed, run
        self.accepted = 0
        self.quarantine: list[QuarantinedRecord] = []
        self.buffer: list[tuple] = []
        self.seq = 0

    def reject(self, item: Rejected) -> None:
        self.run.rows_rejected += 1
        self.quarantine.append(QuarantinedRecord(run=self.run, position=item.position[:80],
                                                 reference=(item.reference or "")[:120],
                                                 reason=item.reason[:300], raw=item.raw[:2000]))
        if len(self.quarantine) >= 1000:
            self._flush_quarantine()

    def _flush_quarantine(self) -> None:
        QuarantinedRecord.objects.unscoped().bulk_create(self.quarantine, batch_size=1000)
        self.quarantine = []

    def _copy(self, table: str, columns: str) -> None:
        if not self.buffer:
            return
        with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in self.buffer:
                copy.write_row(row)
        self.buffer = []

    def finish(self) -> None:
        self._flush_quarantine()


class HotelWriter(_Writer):
    COLUMNS = "seq, hotel_id, city_code, night, room_type, rate_plan, board, amount, currency, available"

    def __init__(self, feed, run):
        super().__init__(feed, run)
        self.hotels = {code: (pk, city) for pk, code, city in
                       Hotel.objects.filter(supplier_id=feed.supplier_id).values_list("id", "code", "city_code")}
        self.described: set[str] = set()  # properties whose BasicPropertyInfo this run has applied
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS _feed_rates")  # (inside an outer transaction, e.g. tests)
            cursor.execute("CREATE TEMPORARY TABLE _feed_rates (seq integer, hotel_id bigint, city_code varchar(3), "
                           "night date, room_type varchar(40), rate_plan varchar(40), board varchar(2), "
                           "amount numeric(12,2), currency varchar(3), available integer) ON COMMIT DROP")

    def _hotel(self, info: HotelInfo) -> tuple[int, str]:
        place = reference.city(info.city_code)
        if place is None:
            raise ValueError(f"HotelCityCode {info.city_code or '(none)'} is not an IATA city or airport code")
        country = info.country or place[1]
        if not reference.is_country(country):
            raise ValueError(f"country {country} is not an ISO 3166 code")
        hotel, _created = Hotel.objects.update_or_create(
            supplier_id=self.feed.supplier_id, code=info.code[:40],
            defaults={"name": info.name[:200], "chain_code": info.chain_code[:10], "city_code": info.city_code,
                      "country": country, "updated_at": timezone.now()})
        self.hotels[info.code] = (hotel.pk, hotel.city_code)
        return self.hotels[info.code]

    def add(self, row: HotelRow) -> None:
        try:
            if row.hotel is not None and row.hotel.code not in self.described:
                hotel_id, city = self._hotel(row.hotel)
                self.described.add(row.hotel.code)
            elif row.hotel_code in self.hotels:
                hotel_id, city = self.hotels[row.hotel_code]
            else:
                raise ValueError(f"unknown property {row.hotel_code}: its descriptive data (OTA_HotelAvailRS "
                                 "with BasicPropertyInfo) has not been received")
            if row.amount is not None:
                if not reference.is_currency(row.currency):
                    raise ValueError(f"CurrencyCode {row.currency or '(none)'} is not an ISO 4217 currency")
                if row.amount >= MAX_AMOUNT:
                    raise ValueError(f"amount {row.amount} is out of range")
            nights = (row.end - row.start).days + 1
            if nights < 1:
                raise ValueError(f"the end date {row.end} is before the start date {row.start}")
            if nights > MAX_NIGHTS:
                raise ValueError(f"{nights} nights in one record (at most {MAX_NIGHTS})")
        except ValueError as exc:
            self.reject(Rejected(row.position, str(exc), row.hotel_code))
            return
        amount = row.amount.quantize(Decimal("0.01")) if row.amount is not None else None
        for offset in range(nights):
            self.seq += 1
            self.buffer.append((self.seq, hotel_id, city, row.start + timedelta(days=offset), row.room_type[:40],
                                row.rate_plan[:40], row.board, amount, row.currency or None, row.available))
        self.accepted += nights
        if len(self.buffer) >= BATCH:
            self._copy("_feed_rates", self.COLUMNS)

    def finish(self) -> None:
        self._copy("_feed_rates", self.COLUMNS)
        super().finish()
        table = HotelRate._meta.db_table
        with connection.cursor() as cursor:
            # The last word for a night wins; a rate and an availability for the same night merge, and an
            # availability alone never erases a known rate.
            cursor.execute(f"""
                INSERT INTO {table} AS r (feed_id, agency_id, hotel_id, city_code, night, room_type, rate_plan, board,
                                         amount, currency, available, updated_at)
                SELECT %s, %s, hotel_id, min(city_code), night, room_type, rate_plan,
                       coalesce((array_agg(board ORDER BY seq DESC) FILTER (WHERE board <> ''))[1], ''),
                       (array_agg(amount ORDER BY seq DESC) FILTER (WHERE amount IS NOT NULL))[1],
                       coalesce((array_agg(currency ORDER BY seq DESC) FILTER (WHERE amount IS NOT NULL))[1], ''),
                       (array_agg(available ORDER BY seq DESC) FILTER (WHERE available IS NOT NULL))[1], now()
                FROM _feed_rates GROUP BY hotel_id, room_type, rate_plan, night
                ON CONFLICT (feed_id, hotel_id, room_type, rate_plan, night) DO UPDATE SET
                    amount = coalesce(EXCLUDED.amount, r.amount), currency = coalesce(nullif(EXCLUDED.currency, ''), r.currency),
                    available = coalesce(EXCLUDED.available, r.available),
                    board = coalesce(nullif(EXCLUDED.board, ''), r.board), updated_at = EXCLUDED.updated_at
            """, [self.feed.pk, self.feed.agency_id])


class OfferWriter(_Writer):
    COLUMNS = ("seq, offer_id, origin, destination, departure_date, departure, arrival, carrier, flight_numbers, "
               "cabin, fare_brand, checked_bags, duration_minutes, stops, price, currency, return_date, slices, "
               "expires_at")

    def __init__(self, feed, run):
        super().__init__(feed, run)
        self.now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS _feed_offers")
            cursor.execute("CREATE TEMPORARY TABLE _feed_offers (seq integer, offer_id varchar(80), origin varchar(3), "
                           "destination varchar(3), departure_date date, departure timestamptz, arrival timestamptz, "
                           "carrier varchar(3), flight_numbers varchar(60), cabin varchar(16), fare_brand varchar(60), "
                           "checked_bags smallint, duration_minutes integer, stops smallint, price numeric(12,2), "
                           "currency varchar(3), return_date date, slices jsonb, expires_at timestamptz) ON COMMIT DROP")

    def add(self, row: OfferRow) -> None:
        if not reference.is_currency(row.currency):
            self.reject(Rejected(row.position, f"total_currency {row.currency or '(none)'} is not an ISO 4217 currency",
                                 row.offer_id))
            return
        if row.expires_at is not None and row.expires_at <= self.now:
            self.reject(Rejected(row.position, f"the offer expired at {row.expires_at.isoformat()}", row.offer_id))
            return
        out = row.slices[0]
        first = out.segments[0]
        slices = [{"origin": s.origin, "destination": s.destination, "duration_minutes": s.duration_minutes,
                   "fare_brand": s.fare_brand,
                   "segments": [{"origin": g.origin, "destination": g.destination, "departure": g.departure.isoformat(),
                                 "arrival": g.arrival.isoformat(), "flight": g.flight_number, "cabin": g.cabin,
                                 "operating_carrier": g.operating_carrier, "aircraft": g.aircraft}
                                for g in s.segments]} for s in row.slices]
        self.seq += 1
        self.buffer.append((self.seq, row.offer_id, out.origin, out.destination, first.departure.date(),
                            first.departure, out.segments[-1].arrival, first.carrier,
                            "/".join(g.flight_number for g in out.segments)[:60], first.cabin, out.fare_brand,
                            row.checked_bags, out.duration_minutes, len(out.segments) - 1, row.price, row.currency,
                            row.slices[1].segments[0].departure.date() if len(row.slices) > 1 else None,
                            json.dumps(slices, ensure_ascii=False), row.expires_at))
        self.accepted += 1
        if len(self.buffer) >= BATCH:
            self._copy("_feed_offers", self.COLUMNS)

    def finish(self) -> None:
        self._copy("_feed_offers", self.COLUMNS)
        super().finish()
        table = FlightOffer._meta.db_table
        columns = self.COLUMNS.replace("seq, ", "")
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE feed_id = %s", [self.feed.pk])
            cursor.execute(f"""
                INSERT INTO {table} (feed_id, agency_id, updated_at, {columns})
                SELECT DISTINCT ON (offer_id) %s, %s, now(), {columns} FROM _feed_offers ORDER BY offer_id, seq DESC
            """, [self.feed.pk, self.feed.agency_id])


def ingest(feed: Feed, path: Path, *, trigger: str, run: FeedRun | None = None) -> FeedRun:
    """Read the message at ``path`` into the feed's inventory, as ``run`` (a queued run) or a new one.
    Returns the finished run (succeeded or failed); never raises for a bad message."""
    size = path.stat().st_size if path.exists() else 0
    if run is None:
        run = FeedRun.objects.unscoped().create(feed=feed, trigger=trigger, bytes=size)
    else:
        run.bytes = size
    connector = CONNECTORS[feed.connector]()
    writer_class = HotelWriter if connector.kind == "hotel" else OfferWriter
    try:
        with transaction.atomic(), open(path, "rb") as raw, unpack.memory_limit():
            writer = writer_class(feed, run)
            for item in connector.parse(_message(raw)):
                if isinstance(item, Rejected):
                    writer.reject(item)
                else:
                    writer.add(item)
            writer.finish()
            run.rows_accepted = writer.accepted
            run.message_type = connector.message_type[:60]
            run.status = FeedRun.Status.SUCCEEDED
            run.finished_at = timezone.now()
            run.save()
            Feed.objects.unscoped().filter(pk=feed.pk).update(
                last_run_at=run.finished_at, last_success_at=run.finished_at, health=Feed.Health.OK, alerted_at=None)
    except (MessageRefused, unpack.UnpackRefused) as exc:
        _failed(feed, run, str(exc))
    except MemoryError:
        _failed(feed, run, f"Reading the message needed more than {settings.PARSE_MAX_MEMORY_MB:,} MB of memory "
                           "(PARSE_MAX_MEMORY_MB): a record in it is far larger than any supplier's. Refused; the "
                           "previous inventory is kept.")
    except Exception as exc:  # noqa: BLE001 — the run fails, the inventory stays; Sentry hears of it
        log.exception("Feed %s run %s failed", feed.pk, run.pk)
        sentry_sdk.capture_exception(exc)
        _failed(feed, run, f"Internal error while reading the message ({type(exc).__name__}); the previous "
                           "inventory is kept. See the server log.")
    return run


def _failed(feed: Feed, run: FeedRun, reason: str) -> None:
    now = timezone.now()
    FeedRun.objects.unscoped().filter(pk=run.pk).update(status=FeedRun.Status.FAILED, finished_at=now,
                                                        error=reason[:2000], rows_accepted=0)
    QuarantinedRecord.objects.unscoped().filter(run=run).delete()
    Feed.objects.unscoped().filter(pk=feed.pk).update(last_run_at=now, health=Feed.Health.FAILING)
    run.refresh_from_db()
