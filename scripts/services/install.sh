#!/usr/bin/env bash
# Install Debian packages the way the service scripts do: only the missing ones, without
# starting their services (Swift's, memcached's and nginx's would otherwise start with
# Debian's default configuration where an init system runs), waiting for the dpkg lock.
#
#   scripts/services/install.sh PACKAGE...
set -euo pipefail
SERVICE=install
. "$(dirname "$0")/lib.sh"
need_root "$@"
[ $# -gt 0 ] || die "usage: $0 PACKAGE..."
apt_install "$@"
say "present: $* ($(elapsed))"
