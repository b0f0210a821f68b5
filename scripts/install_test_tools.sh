#!/usr/bin/env bash
# Debian's tools the tests drive: Chromium for the dashboard's browser tests (Playwright drives
# it; Playwright's own browser download is not used) and promtool (package prometheus) for the
# alert rules, and nginx, the load balancer of `make cluster` and tests/cluster. Installs only
# what is missing; needs root or sudo.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

install() {  # package, then apt-get options
  local package=$1
  shift
  $SUDO apt-get install -y -q "$@" "$package" >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q "$@" "$package" >/dev/null
  }
}

command -v chromium >/dev/null 2>&1 || install chromium
command -v promtool >/dev/null 2>&1 || install prometheus --no-install-recommends
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || install nginx --no-install-recommends
chromium --version
promtool --version 2>&1 | head -1
/usr/sbin/nginx -v 2>&1 || nginx -v
