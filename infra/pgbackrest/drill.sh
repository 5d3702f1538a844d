#!/usr/bin/env bash
# The restore drill, end to end, on a throw-away PostgreSQL cluster of this machine's binaries:
# never on a real one. It
#   1. creates a cluster in $DRILL_DIR with WAL archiving to a pgBackRest repository there,
#   2. loads Caravan into it (migrate_platform, the demo agencies of seed_demo) plus
#      pgbench ballast of $SCALE (about 15 MB per unit), so the sizes mean something,
#   3. takes a full backup, changes data, takes a differential backup,
#   4. notes the time T, then "loses" data (deletes an agency's customers) after T,
#   5. restores the backup into a second data directory with recovery to T, starts it on
#      another port, and verifies it: Caravan's migrations are all applied
#      (migrate_schemas --check) and every agency table has the row count it had at T,
#   6. repeats the backups and the restore $ROUNDS times, prints the median and range of each
#      step, and stops both clusters.
#
#   sudo SCALE=20 ROUNDS=3 infra/pgbackrest/drill.sh     # from the checkout, with .venv in place
#
# Needs: pgbackrest (apt-get install pgbackrest), PostgreSQL 15 binaries in $PGBIN, root or the
# postgres user (the clusters run as postgres). docs/operations.md, "Restore drill", has the results.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DRILL_DIR=${DRILL_DIR:-/tmp/caravan-restore-drill}
SCALE=${SCALE:-10}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-54329}
RESTORE_PORT=${RESTORE_PORT:-54330}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
STANZA=caravan

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
now() { date +%s.%N; }
took() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f} s')" "$1" "$(now)"; }
sql() { as_pg "$PGBIN/psql" -h "$DRILL_DIR" -p "$1" -d caravan -v ON_ERROR_STOP=1 -qAt -c "$2"; }

stop_all() {
  for data in "$DRILL_DIR/pg" "$DRILL_DIR/restored"; do
    [ -f "$data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
  done
}
# The clusters and the repository take several times the database's size: removed at the end
# unless KEEP=1.
finish() { stop_all; [ "${KEEP:-0}" = 1 ] || rm -rf "$DRILL_DIR"; }
trap finish EXIT

stop_all
rm -rf "$DRILL_DIR"
mkdir -p "$DRILL_DIR"
chmod 755 "$DRILL_DIR"
[ "$(id -u)" = 0 ] && chown postgres "$DRILL_DIR"
CONF=$DRILL_DIR/pgbackrest.conf
as_pg mkdir -p "$DRILL_DIR/log" "$DRILL_DIR/lock"
as_pg tee "$CONF" >/dev/null <<CONF
[global]
repo1-path=$DRILL_DIR/repo
repo1-retention-full=2
compress-type=zst
compress-level=3
process-max=2
start-fast=y
log-path=$DRILL_DIR/log
lock-path=$DRILL_DIR/lock
log-level-console=warn

[$STANZA]
pg1-path=$DRILL_DIR/pg
pg1-port=$PORT
pg1-socket-path=$DRILL_DIR
CONF
BR="pgbackrest --config=$CONF --stanza=$STANZA"

echo "== cluster with WAL archiving ($DRILL_DIR)"
as_pg "$PGBIN/initdb" -D "$DRILL_DIR/pg" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_pg tee -a "$DRILL_DIR/pg/postgresql.conf" >/dev/null <<PGCONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DRILL_DIR'
wal_level = replica
archive_mode = on
archive_command = '$BR archive-push %p'
archive_timeout = 60
max_wal_size = 2GB
PGCONF
as_pg "$PGBIN/pg_ctl" -D "$DRILL_DIR/pg" -l "$DRILL_DIR/pg.log" -w start >/dev/null
as_pg "$PGBIN/createdb" -h "$DRILL_DIR" -p "$PORT" caravan
as_pg $BR stanza-create
as_pg $BR check

echo "== Caravan's schemas and demo agencies, pgbench ballast at scale $SCALE"
export DATABASE_URL="postgres://postgres@$(python3 -c "import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=''))" "$DRILL_DIR"):$PORT/caravan"
export REDIS_URL=${DRILL_REDIS_URL:-redis://127.0.0.1:6379/11}
export EXECUTOR=standard
export EMAIL_BACKEND=django.core.mail.backends.locmem.EmailBackend  # seed_demo sends mail
t=$(now)
# The secrets make run keeps in var/ (generated there if missing).
eval "$("$PYTHON" - <<'PY'
import shlex
from infra.devenv import prepare_env
env = prepare_env()
for key in ("SECRET_KEY", "DOCUMENT_KEYS", "DOCUMENT_HASH_KEY", "PYTHONPATH", "DJANGO_SETTINGS_MODULE"):
    print(f"export {key}={shlex.quote(env[key])}")
PY
)"
"$PYTHON" -m infra.entrypoint migrate --verbosity 0
"$PYTHON" -m infra.entrypoint manage seed_demo --password=drill-Password-1 >/dev/null
as_pg "$PGBIN/pgbench" -h "$DRILL_DIR" -p "$PORT" -i -q -s "$SCALE" caravan >/dev/null 2>&1
echo "loaded in $(took "$t"); database size $(sql "$PORT" "SELECT pg_size_pretty(pg_database_size('caravan'))")"

COUNTS="SELECT string_agg(format('%s.%s=%s', table_schema, table_name,
          (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name), false, true, '')))[1]::text),
          ' ' ORDER BY table_schema, table_name)
        FROM information_schema.tables
        WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"

stats() { python3 -c "import statistics, sys; v = [float(x) for x in sys.argv[1:]]; print(f'median {statistics.median(v):.1f} s, range {min(v):.1f}-{max(v):.1f} s over {len(v)} runs')" $*; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }
FULLS=(); DIFFS=(); RESTORES=(); REPLAYS=()
for round in $(seq "$ROUNDS"); do
  echo "== round $round: full backup, 10 % of pgbench_accounts changed, differential backup"
  t=$(now); as_pg $BR --type=full backup; FULLS+=("$(secs "$t")")
  sql "$PORT" "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 10 = $round % 10"
  t=$(now); as_pg $BR --type=diff backup; DIFFS+=("$(secs "$t")")
done

sql "$PORT" "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 7 = 0"
BEFORE=$(sql "$PORT" "$COUNTS")
sleep 1
TARGET=$(sql "$PORT" "SELECT to_char(clock_timestamp(), 'YYYY-MM-DD HH24:MI:SS.US+00')")
sleep 1
echo "== the mistake, after $TARGET: the agency sunrise's schema dropped"
sql "$PORT" "SET client_min_messages = warning; DROP SCHEMA sunrise CASCADE"
sql "$PORT" "SELECT pg_switch_wal()" >/dev/null
as_pg $BR check  # waits until the WAL holding the mistake is archived

for round in $(seq "$ROUNDS"); do
  echo "== round $round: point-in-time restore to $TARGET into a scratch data directory"
  rm -rf "$DRILL_DIR/restored"
  as_pg mkdir -m 700 "$DRILL_DIR/restored"
  t=$(now)
  as_pg $BR --pg1-path="$DRILL_DIR/restored" --type=time "--target=$TARGET" --target-action=promote restore
  RESTORES+=("$(secs "$t")")
  t=$(now)
  # Another port, and no archiving: the scratch copy must never push WAL into the real repository.
  as_pg "$PGBIN/pg_ctl" -D "$DRILL_DIR/restored" -l "$DRILL_DIR/restored.log" -w -t 600 \
    -o "-p $RESTORE_PORT -c archive_mode=off" start >/dev/null
  until [ "$(sql "$RESTORE_PORT" "SELECT pg_is_in_recovery()")" = f ]; do sleep 0.2; done
  REPLAYS+=("$(secs "$t")")

  echo "== verify"
  AFTER=$(sql "$RESTORE_PORT" "$COUNTS")
  if [ "$round" = 1 ]; then
    DATABASE_URL="${DATABASE_URL/:$PORT\//:$RESTORE_PORT/}" "$PYTHON" -m infra.entrypoint manage migrate_schemas --check \
      --verbosity 0 && echo "migrations: all applied in every schema"
  fi
  if [ "$BEFORE" = "$AFTER" ]; then
    echo "row counts: every table ($(wc -w <<<"$AFTER")) as it was at $TARGET"
  else
    echo "row counts DIFFER:"; diff <(tr ' ' '\n' <<<"$BEFORE") <(tr ' ' '\n' <<<"$AFTER") || true
    exit 1
  fi
  echo "sunrise: $(sql "$RESTORE_PORT" "SELECT count(*) FROM sunrise.crm_customer") customers back (the primary has $(sql "$PORT" "SELECT count(*) FROM pg_namespace WHERE nspname = 'sunrise'") such schema)"
  as_pg "$PGBIN/pg_ctl" -D "$DRILL_DIR/restored" -m fast stop >/dev/null
done

echo
echo "== drill figures: database $(sql "$PORT" "SELECT pg_size_pretty(pg_database_size('caravan'))") (pgbench scale $SCALE), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "full backup:          $(stats "${FULLS[@]}")"
echo "differential backup:  $(stats "${DIFFS[@]}")"
echo "restore (files):      $(stats "${RESTORES[@]}")"
echo "WAL replay to target: $(stats "${REPLAYS[@]}")"
as_pg pgbackrest --config="$CONF" --stanza=$STANZA info --set="$(as_pg pgbackrest --config="$CONF" --stanza=$STANZA info --output=json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["backup"][-1]["label"])')" | grep -E 'backup:|size'
