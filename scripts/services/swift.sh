#!/usr/bin/env bash
# A one-node OpenStack Swift with the S3 API (s3api) for the registry's tests and benchmark.
#
#   env=$(scripts/services/swift.sh) && eval "$env"     # install, configure, start, create the bucket
#   scripts/services/swift.sh stop
#
# From Debian's packages (swift 2.30: s3api is part of swift itself since 2.18), as root,
# with or without systemd: the account, container, object and proxy servers and memcached
# are started directly, each in its own session, logging to /var/log/boxsig-engines/.
# One device (a plain directory, BOXSIG_SWIFT_DEVICES/d1, mount_check = false), rings of
# one replica, tempauth + s3api in the proxy pipeline, everything on 127.0.0.1 only.
# Prints:
#   export BOXSIG_TEST_S3_ENDPOINT='http://127.0.0.1:8080'
#   export BOXSIG_TEST_S3_REGION='swift-local'          (the s3api `location`)
#   export BOXSIG_TEST_S3_BUCKET='boxsig-test'
#   export AWS_ACCESS_KEY_ID='boxsig:ci'                 (tempauth's account:user)
#   export AWS_SECRET_ACCESS_KEY='…'                     (random, kept in /var/lib/boxsig-engines)
# Safe to run again at any time: running servers whose configuration did not change are
# left alone, stale pid files are ignored, rings are rebuilt only when their layout changes.
#
# Environment: BOXSIG_SWIFT_PORT (8080), BOXSIG_SWIFT_DEVICES (/srv/node),
# BOXSIG_SWIFT_REGION (swift-local), BOXSIG_SWIFT_BUCKET (boxsig-test),
# BOXSIG_SWIFT_PROXY_WORKERS (2).
set -euo pipefail
SERVICE=swift
. "$(dirname "$0")/lib.sh"
need_root "$@"

PORT=${BOXSIG_SWIFT_PORT:-8080}
DEVICES=${BOXSIG_SWIFT_DEVICES:-/srv/node}
REGION=${BOXSIG_SWIFT_REGION:-swift-local}
BUCKET=${BOXSIG_SWIFT_BUCKET:-boxsig-test}
PROXY_WORKERS=${BOXSIG_SWIFT_PROXY_WORKERS:-2}
ACCOUNT=boxsig
USER_NAME=ci
MEMCACHED_PORT=11211
ETC=/etc/swift
LOG="$BOXSIG_ENGINES_LOG/swift.log"
ENDPOINT="http://127.0.0.1:$PORT"
# server name -> port (Swift's default ports)
declare -A SERVER_PORT=([object]=6200 [container]=6201 [account]=6202 [proxy]=$PORT)
SERVERS=(object container account proxy)

install_packages() {
  apt_install swift swift-proxy swift-account swift-container swift-object memcached curl iproute2
}

# ---------------------------------------------------------------- configuration
CHANGED=""
# put_file PATH MODE OWNER: write stdin to PATH atomically when its content differs.
put_file() {
  local path=$1 mode=$2 owner=$3 tmp
  tmp=$(mktemp "$path.XXXXXX")
  cat >"$tmp"
  chmod "$mode" "$tmp"
  chown "$owner" "$tmp"
  if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
    rm -f "$tmp"
  else
    mv -f "$tmp" "$path"
    CHANGED=1
  fi
}

backend_conf() {
  local name=$1
  cat <<EOF
# Written by boxsig's scripts/services/swift.sh: a one-node test store.
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${SERVER_PORT[$name]}
workers = 1
user = swift
swift_dir = $ETC
devices = $DEVICES
mount_check = false
log_name = $name-server
log_level = INFO

[pipeline:main]
pipeline = healthcheck $name-server

[app:$name-server]
use = egg:swift#$name

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
}

proxy_conf() {
  local secret=$1
  cat <<EOF
# Written by boxsig's scripts/services/swift.sh: a one-node test store with the S3 API.
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PORT
workers = $PROXY_WORKERS
user = swift
swift_dir = $ETC
log_name = proxy-server
log_level = INFO

[pipeline:main]
# s3api before the auth middleware; slo after it (s3api builds multipart uploads on SLO);
# versioned_writes is required by the proxy (it would add it by itself).
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo versioned_writes proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
# the S3 region: clients must sign with exactly this name (SigV4)
location = $REGION
# AWS's own limits: 10,000 parts of at least 5 MiB
max_upload_part_num = 10000

[filter:tempauth]
use = egg:swift#tempauth
# S3 access key "$ACCOUNT:$USER_NAME", secret key the password
user_${ACCOUNT}_${USER_NAME} = $secret .admin

[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000

[filter:dlo]
use = egg:swift#dlo

[filter:versioned_writes]
use = egg:swift#versioned_writes

[filter:copy]
use = egg:swift#copy

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:catch_errors]
use = egg:swift#catch_errors
EOF
}

configure() {
  mkdir -p "$ETC" "$DEVICES/d1" /var/cache/swift "$BOXSIG_ENGINES_RUN" "$BOXSIG_ENGINES_LOG"
  chown swift:swift "$DEVICES" "$DEVICES/d1" /var/cache/swift
  # The servers read swift.conf from this fixed path. The hash suffix is made once:
  # changing it would make every stored object unreachable.
  put_file "$ETC/swift.conf" 0644 root:root <<EOF
# Written by boxsig's scripts/services/swift.sh.
[swift-hash]
swift_hash_path_suffix = $(secret swift-hash-suffix)

[storage-policy:0]
name = Policy-0
default = yes
EOF
  local s
  # (not through pipes: put_file must run in this shell to record a change)
  for s in object container account; do put_file "$ETC/$s-server.conf" 0644 root:root < <(backend_conf "$s"); done
  put_file "$ETC/proxy-server.conf" 0640 root:swift < <(proxy_conf "$(secret swift-s3-secret)")
  build_rings
}

# One ring per server type: 2^8 partitions, one replica, one device.
build_rings() {
  local spec="part_power=8 replicas=1 devices=$DEVICES/d1 ports=${SERVER_PORT[object]},${SERVER_PORT[container]},${SERVER_PORT[account]}"
  local ring
  if [ -f "$ETC/boxsig-rings.spec" ] && [ "$(cat "$ETC/boxsig-rings.spec")" = "$spec" ] &&
    [ -f "$ETC/object.ring.gz" ] && [ -f "$ETC/container.ring.gz" ] && [ -f "$ETC/account.ring.gz" ]; then
    return 0
  fi
  say "building rings"
  for ring in object container account; do
    rm -f "$ETC/$ring.builder" "$ETC/$ring.ring.gz"
    swift-ring-builder "$ETC/$ring.builder" create 8 1 1 >>"$LOG" 2>&1 || die "swift-ring-builder create $ring failed" "$LOG"
    swift-ring-builder "$ETC/$ring.builder" add --region 1 --zone 1 --ip 127.0.0.1 --port "${SERVER_PORT[$ring]}" \
      --device d1 --weight 100 >>"$LOG" 2>&1 || die "swift-ring-builder add $ring failed" "$LOG"
    # rebalance exits 1 for warnings only
    swift-ring-builder "$ETC/$ring.builder" rebalance >>"$LOG" 2>&1 || [ $? = 1 ] || die "swift-ring-builder rebalance $ring failed" "$LOG"
  done
  chmod 0644 "$ETC"/*.ring.gz
  printf '%s\n' "$spec" >"$ETC/boxsig-rings.spec"
  CHANGED=1
}

# ---------------------------------------------------------------- processes
pidfile() { echo "$BOXSIG_ENGINES_RUN/$1.pid"; }

# running NAME PATTERN: the pid file names a live process whose command line matches.
running() {
  local pid
  pid=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}

# stop_pid PID: TERM, then KILL after 10 s.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# free_port NAME PORT PATTERN: the port must be free before NAME starts. Processes of our
# own server still listening on it (workers orphaned when their parent died) are stopped;
# anything else is someone else's, and a failure.
free_port() {
  local name=$1 port=$2 pattern=$3 pid
  port_open "$port" || return 0
  for pid in $(ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"; then
      say "stopping an orphaned $name process ($pid) still listening on $port"
      stop_pid "$pid"
    fi
  done
  wait_for 10 eval '! port_open '"$port" ||
    die "port $port (for $name) is in use by another process: $(ss -ltnpH "sport = :$port" 2>/dev/null | head -1)"
}

# start_daemon NAME PORT LOGFILE COMMAND...: start detached (own session, stdio to the log).
start_daemon() {
  local name=$1 port=$2 logfile=$3
  shift 3
  free_port "$name" "$port" "$*"
  # keep one previous log, so that logs of many runs do not grow without bound
  if [ "$(stat -c %s "$logfile" 2>/dev/null || echo 0)" -gt $((64 * 1024 * 1024)) ]; then mv -f "$logfile" "$logfile.1"; fi
  printf '\n==== %s: starting %s\n' "$(date -Is)" "$*" >>"$logfile"
  setsid "$@" </dev/null >>"$logfile" 2>&1 &
  echo $! >"$(pidfile "$name")"
}

stop_daemon() {
  local name=$1 pattern=$2
  if running "$name" "$pattern"; then stop_pid "$(cat "$(pidfile "$name")")"; fi
  rm -f "$(pidfile "$name")"
}

start_memcached() {
  running memcached memcached && return 0
  # a memcached the machine already runs on the port serves as well
  port_open "$MEMCACHED_PORT" && return 0
  say "starting memcached"
  start_daemon memcached "$MEMCACHED_PORT" "$BOXSIG_ENGINES_LOG/memcached.log" \
    memcached -u memcache -l 127.0.0.1 -p "$MEMCACHED_PORT" -m 64
}

start_servers() {
  local s
  if [ -n "$CHANGED" ]; then
    for s in "${SERVERS[@]}"; do stop_daemon "swift-$s" "swift-$s-server"; done
  fi
  # Debian's units, where systemd runs, would compete for the same ports.
  if [ -d /run/systemd/system ]; then systemctl stop swift-proxy swift-account swift-container swift-object >/dev/null 2>&1 || true; fi
  for s in "${SERVERS[@]}"; do
    running "swift-$s" "swift-$s-server" && continue
    say "starting the $s server"
    start_daemon "swift-$s" "${SERVER_PORT[$s]}" "$BOXSIG_ENGINES_LOG/swift-$s.log" \
      "swift-$s-server" "$ETC/$s-server.conf" --verbose
  done
}

healthy() { [ "$(curl -fsS --max-time 2 "http://127.0.0.1:$1/healthcheck" 2>/dev/null)" = OK ]; }

# server_up NAME: it answers its health check; a server that exited fails at once.
server_up() {
  healthy "${SERVER_PORT[$1]}" && return 0
  running "swift-$1" "swift-$1-server" || die "the $1 server exited" "$BOXSIG_ENGINES_LOG/swift-$1.log"
  return 1
}

wait_ready() {
  local s
  for s in "${SERVERS[@]}"; do
    wait_for 60 server_up "$s" ||
      die "the $s server does not answer on 127.0.0.1:${SERVER_PORT[$s]} after 60 s" "$BOXSIG_ENGINES_LOG/swift-$s.log"
  done
}

# ---------------------------------------------------------------- S3
# s3 METHOD PATH [curl args...]: a SigV4-signed request through s3api; prints the HTTP status.
# The access key holds a colon (account:user), which --user cannot carry: a netrc file can.
# s3api requires x-amz-content-sha256, which curl 7.88 does not add by itself.
s3() {
  local method=$1 path=$2 verb
  shift 2
  if [ "$method" = HEAD ]; then verb=(-I); else verb=(-X "$method"); fi
  curl -sS -o /dev/null -w '%{http_code}' --max-time 30 "${verb[@]}" \
    --netrc-file "$NETRC" --aws-sigv4 "aws:amz:$REGION:s3" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
    "$@" "$ENDPOINT$path"
}

ensure_bucket() {
  local status probe="/$BUCKET/.boxsig-ready-$$"
  NETRC=$(mktemp)
  # shellcheck disable=SC2064
  trap "rm -f '$NETRC'" EXIT
  printf 'machine 127.0.0.1 login %s password %s\n' "$ACCOUNT:$USER_NAME" "$(secret swift-s3-secret)" >"$NETRC"
  status=$(s3 HEAD "/$BUCKET") || true
  if [ "$status" != 200 ]; then
    status=$(s3 PUT "/$BUCKET") || true
    [ "$status" = 200 ] || die "creating bucket $BUCKET answered HTTP $status" "$BOXSIG_ENGINES_LOG/swift-proxy.log"
    say "created bucket $BUCKET"
  fi
  # A real write, read and delete: proves the object servers and the ring, not just the proxy.
  status=$(s3 PUT "$probe" --data-binary ready) || true
  [ "$status" = 200 ] || die "writing an object answered HTTP $status" "$BOXSIG_ENGINES_LOG/swift-object.log"
  status=$(s3 GET "$probe") || true
  [ "$status" = 200 ] || die "reading an object answered HTTP $status" "$BOXSIG_ENGINES_LOG/swift-object.log"
  status=$(s3 DELETE "$probe") || true
  [ "$status" = 204 ] || die "deleting an object answered HTTP $status" "$BOXSIG_ENGINES_LOG/swift-object.log"
  rm -f "$NETRC"
  trap - EXIT
}

start() {
  install_packages
  configure
  start_memcached
  start_servers
  wait_ready
  ensure_bucket
  say "Swift (s3api) ready at $ENDPOINT, region $REGION, bucket $BUCKET ($(elapsed)); logs in $BOXSIG_ENGINES_LOG/"
  emit BOXSIG_TEST_S3_ENDPOINT "$ENDPOINT"
  emit BOXSIG_TEST_S3_REGION "$REGION"
  emit BOXSIG_TEST_S3_BUCKET "$BUCKET"
  emit AWS_ACCESS_KEY_ID "$ACCOUNT:$USER_NAME"
  emit AWS_SECRET_ACCESS_KEY "$(secret swift-s3-secret)"
}

stop() {
  local s
  for s in "${SERVERS[@]}"; do stop_daemon "swift-$s" "swift-$s-server"; done
  stop_daemon memcached memcached
  say "stopped"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 [start|stop]" ;;
esac
