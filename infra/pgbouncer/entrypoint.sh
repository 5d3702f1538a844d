#!/bin/sh
# Writes pgbouncer.ini and its user list from the environment, then runs PgBouncer in the
# foreground. Transaction pooling: a server connection is lent to a client for one transaction
# only, which is what lets thousands of web and worker connections share a few dozen PostgreSQL
# ones. Caravan is written to be correct in this mode (search_path set inside each transaction;
# docs/deploy.md, "PgBouncer").
#
#   DB_HOST (postgres)  DB_PORT (5432)  DB_NAME (caravan)  DB_USER (caravan)  DB_PASSWORD (required)
#   POOL_MODE (transaction)   MAX_CLIENT_CONN (1000)   DEFAULT_POOL_SIZE (20)
#   MIN_POOL_SIZE (0)   RESERVE_POOL_SIZE (5)   SERVER_IDLE_TIMEOUT (600)
#   LISTEN_PORT (6432)  CONFIG_DIR (/tmp/pgbouncer)
set -eu
: "${DB_PASSWORD:?DB_PASSWORD must be set (the password of DB_USER on PostgreSQL)}"
dir="${CONFIG_DIR:-/tmp/pgbouncer}"
mkdir -p "$dir"
umask 077
user="${DB_USER:-caravan}"
# userlist.txt: "name" "password"; a double quote inside is written twice.
printf '"%s" "%s"\n' "$(printf %s "$user" | sed 's/"/""/g')" "$(printf %s "$DB_PASSWORD" | sed 's/"/""/g')" \
  > "$dir/userlist.txt"
cat > "$dir/pgbouncer.ini" <<INI
[databases]
${DB_NAME:-caravan} = host=${DB_HOST:-postgres} port=${DB_PORT:-5432} dbname=${DB_NAME:-caravan}

[pgbouncer]
listen_addr = ${LISTEN_ADDR:-0.0.0.0}
listen_port = ${LISTEN_PORT:-6432}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = ${POOL_MODE:-transaction}
max_client_conn = ${MAX_CLIENT_CONN:-1000}
default_pool_size = ${DEFAULT_POOL_SIZE:-20}
min_pool_size = ${MIN_POOL_SIZE:-0}
reserve_pool_size = ${RESERVE_POOL_SIZE:-5}
server_idle_timeout = ${SERVER_IDLE_TIMEOUT:-600}
; Run between clients in session mode only. In transaction mode no session state may be relied
; on: Caravan sets its search_path inside every transaction (docs/deploy.md, "PgBouncer").
server_reset_query = DISCARD ALL
; psycopg may send these at connect; PgBouncer would refuse the connection otherwise.
ignore_startup_parameters = extra_float_digits,options
; The health checks of compose and Kubernetes connect often: do not log each.
log_connections = 0
log_disconnections = 0
admin_users = ${user}
stats_users = ${user}
INI
exec pgbouncer "$dir/pgbouncer.ini"
