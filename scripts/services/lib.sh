# Shared helpers of scripts/services/*.sh (sourced, not run).
#
# Conventions of every service script:
# - stdout carries only `export NAME='value'` lines, so that
#   `env=$(scripts/services/X.sh) && eval "$env"` sets up a shell, and nothing else;
# - progress, timings and failures go to stderr, prefixed with the service's name;
# - a failure exits non-zero and names the log file to read.

BOXSIG_ENGINES_STATE=${BOXSIG_ENGINES_STATE:-/var/lib/boxsig-engines}
BOXSIG_ENGINES_LOG=${BOXSIG_ENGINES_LOG:-/var/log/boxsig-engines}
BOXSIG_ENGINES_RUN=${BOXSIG_ENGINES_RUN:-/run/boxsig-engines}

SERVICE=${SERVICE:-services}
_T0=$(date +%s.%N)

say() { printf '%s: %s\n' "$SERVICE" "$*" >&2; }

# die MESSAGE [LOGFILE]: fail, naming the log and showing its end.
die() {
  say "FAILED: $1"
  if [ -n "${2:-}" ] && [ -f "$2" ]; then
    say "last lines of $2:"
    tail -n 30 "$2" | sed 's/^/    /' >&2
    say "full log: $2"
  fi
  exit 1
}

elapsed() { awk -v a="$_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }'; }

# Run as root (the scripts install packages, write /etc and start daemons as their users).
need_root() {
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "run as root (or install sudo)"
    exec sudo -E "$0" "$@"
  fi
}

# Single-quote a value for a shell `export` line.
shell_quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

emit() { printf 'export %s=%s\n' "$1" "$(shell_quote "$2")"; }

has_package() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

# apt_install PKG...: install the packages that are missing, without starting their
# services (a temporary policy-rc.d, as in containers), waiting for the dpkg lock
# (other users of the machine may be installing too), keeping existing config files.
apt_install() {
  local missing=() p
  for p in "$@"; do has_package "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  mkdir -p "$BOXSIG_ENGINES_LOG"
  local log="$BOXSIG_ENGINES_LOG/apt.log" policy=/usr/sbin/policy-rc.d added=""
  say "installing ${missing[*]} (log: $log)"
  if [ ! -e "$policy" ]; then
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    printf '#!/bin/sh\n# boxsig services: do not start services while installing\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added=1
  fi
  local rc=0 apt=(apt-get -q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  {
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends "${missing[@]}" ||
      { DEBIAN_FRONTEND=noninteractive "${apt[@]}" update && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends "${missing[@]}"; }
  } >>"$log" 2>&1 || rc=$?
  if [ -n "$added" ]; then
    rm -f "$policy"
    trap - EXIT
  fi
  [ "$rc" = 0 ] || die "apt-get install ${missing[*]} failed" "$log"
}

# secret NAME: a random secret created once and kept in the state directory (0600),
# so that every run prints the same credentials and running clients keep working.
secret() {
  local f="$BOXSIG_ENGINES_STATE/$1"
  if [ ! -s "$f" ]; then
    mkdir -p "$BOXSIG_ENGINES_STATE"
    chmod 700 "$BOXSIG_ENGINES_STATE"
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$f.tmp.$$" && mv -f "$f.tmp.$$" "$f")
  fi
  cat "$f"
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for SECONDS COMMAND...: retry COMMAND every 0.2 s until it succeeds (status 1 on time-out).
wait_for() {
  local limit=$1 deadline
  shift
  deadline=$(($(date +%s) + limit))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
