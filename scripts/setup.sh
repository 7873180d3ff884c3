#!/usr/bin/env bash
# Brings a fresh clone to a working install: pnpm 12.4.2, the workspace's dependencies (better-sqlite3 compiles
# from source against Node's headers here), and with --test the Debian packages the test suite drives
# (Chromium and a CJK font for the browser tests, mosquitto as a second standard broker for the agent, PostgreSQL
# for the engine tests: each run starts a throwaway server of its own, the package's cluster is not used; haproxy for
# the load balancer test; debootstrap and lintian for the Debian packages' install test).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "12.4.2" ]; then
  echo "setup: installing pnpm 12.4.2" >&2
  npm install -g pnpm@12.4.2 >&2
fi

# better-sqlite3 has no reachable prebuilt binary; it compiles against the local Node headers.
if [ -d /usr/include/node ]; then export npm_config_nodedir=/usr; fi

if [ "$want_test" = 1 ]; then
  need=()
  for pkg in chromium fonts-wqy-microhei mosquitto mosquitto-clients postgresql haproxy debootstrap lintian; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}" >&2
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  fi
fi

pnpm install --frozen-lockfile >&2
