#!/usr/bin/env bash
# Start PostgreSQL 15 for the registry's tests and benchmark, idempotently.
#
#   env=$(scripts/services/postgres.sh) && eval "$env"     # start (installs postgresql-15 if missing)
#   scripts/services/postgres.sh stop
#
# Starts Debian's cluster (default 15/main) with pg_ctlcluster (no systemd needed),
# creates the role `boxsig_test` (LOGIN CREATEDB, so that each test can create its own
# database) and its database `boxsig_test`, and prints
#   export BOXSIG_TEST_DATABASE_URL='postgresql://boxsig_test:…@127.0.0.1:PORT/boxsig_test'
# The password is random, made once and kept in /var/lib/boxsig-engines/postgres-password.
# Safe to run again at any time: a running cluster is left running, existing objects are kept.
#
# Environment: BOXSIG_PG_VERSION (15), BOXSIG_PG_CLUSTER (main), BOXSIG_PG_ROLE (boxsig_test).
set -euo pipefail
SERVICE=postgres
. "$(dirname "$0")/lib.sh"
need_root "$@"

VERSION=${BOXSIG_PG_VERSION:-15}
CLUSTER=${BOXSIG_PG_CLUSTER:-main}
ROLE=${BOXSIG_PG_ROLE:-boxsig_test}
LOG="$BOXSIG_ENGINES_LOG/postgres.log"
SERVER_LOG="/var/log/postgresql/postgresql-$VERSION-$CLUSTER.log"
mkdir -p "$BOXSIG_ENGINES_LOG"

# "PORT STATUS" of the cluster, empty when it does not exist.
cluster_state() { pg_lsclusters -h 2>/dev/null | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c { print $3, $4 }'; }

ensure_cluster() {
  apt_install "postgresql-$VERSION"
  if [ -z "$(cluster_state)" ]; then
    say "creating cluster $VERSION/$CLUSTER"
    pg_createcluster "$VERSION" "$CLUSTER" >>"$LOG" 2>&1 || die "pg_createcluster $VERSION $CLUSTER failed" "$LOG"
  fi
}

start_cluster() {
  local state
  state=$(cluster_state)
  case "$state" in *online*) return 0 ;; esac
  say "starting cluster $VERSION/$CLUSTER"
  # Another process may be starting it at the same moment: judge by the state afterwards.
  pg_ctlcluster "$VERSION" "$CLUSTER" start >>"$LOG" 2>&1 || true
  wait_for 30 cluster_online || die "cluster $VERSION/$CLUSTER did not start (server log: $SERVER_LOG)" "$LOG"
}
cluster_online() { case "$(cluster_state)" in *online*) return 0 ;; *) return 1 ;; esac; }

# Role and database, created when missing; the password is (re)set to the kept one.
ensure_role_and_database() {
  local port=$1 password=$2
  local psql=(runuser -u postgres -- psql -p "$port" -X -q -At -v ON_ERROR_STOP=1 -d postgres)
  # CREATE DATABASE cannot run inside DO/transactions: \gexec runs it only when missing. Two
  # scripts racing may both try; the loser fails with "already exists" and simply tries again.
  local attempt
  for attempt in 1 2 3; do
    if "${psql[@]}" >>"$LOG" 2>&1 <<SQL; then return 0; fi
DO \$\$ BEGIN CREATE ROLE "$ROLE"; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;
ALTER ROLE "$ROLE" WITH LOGIN CREATEDB NOSUPERUSER NOCREATEROLE PASSWORD '$password';
SELECT format('CREATE DATABASE %I OWNER %I', '$ROLE', '$ROLE')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$ROLE') \gexec
SQL
    sleep 0.5
  done
  die "could not create role and database $ROLE" "$LOG"
}

start() {
  ensure_cluster
  start_cluster
  local port password url
  port=$(cluster_state | awk '{ print $1 }')
  password=$(secret postgres-password)
  ensure_role_and_database "$port" "$password"
  url="postgresql://$ROLE:$password@127.0.0.1:$port/$ROLE"
  # The URL must work as a client sees it: TCP on the loopback, password authentication.
  PGCONNECT_TIMEOUT=5 psql "$url" -X -q -At -c 'SELECT 1' >>"$LOG" 2>&1 ||
    die "cannot connect as $ROLE to 127.0.0.1:$port (check pg_hba.conf for 127.0.0.1/32; server log: $SERVER_LOG)" "$LOG"
  say "PostgreSQL $VERSION/$CLUSTER ready on 127.0.0.1:$port, database $ROLE ($(elapsed))"
  emit BOXSIG_TEST_DATABASE_URL "$url"
}

stop() {
  if cluster_online; then pg_ctlcluster "$VERSION" "$CLUSTER" stop >>"$LOG" 2>&1 || die "pg_ctlcluster stop failed" "$LOG"; fi
  say "cluster $VERSION/$CLUSTER stopped"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 [start|stop]" ;;
esac
