#!/usr/bin/env bash
# Debian's Chromium for the browser tests of the registry pages (test/pages.test.ts, driven by
# playwright-core). `install` is idempotent: it does nothing when /usr/bin/chromium is there.
set -euo pipefail
case "${1:-}" in
  install)
    if [ -x /usr/bin/chromium ]; then exit 0; fi
    export DEBIAN_FRONTEND=noninteractive
    # Another install may hold the apt lock for a while: wait for it rather than fail.
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
      if apt-get -o DPkg::Lock::Timeout=120 update -qq && apt-get -o DPkg::Lock::Timeout=120 install -y -qq chromium; then exit 0; fi
      echo "chromium install failed (attempt $attempt), retrying" >&2
      sleep 10
    done
    exit 1
    ;;
  *)
    echo "usage: scripts/chromium.sh install" >&2
    exit 2
    ;;
esac
