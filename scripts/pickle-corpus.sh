#!/usr/bin/env bash
# The libraries that write the pickle-scan corpus's benign half (test/fixtures/pickle-corpus/):
# Debian 12's PyTorch, scikit-learn, joblib and NumPy, and the compressors joblib offers (lz4),
# for Debian's own Python (/usr/bin/python3; a pyenv `python3` on PATH lacks them).
#
#   bash scripts/pickle-corpus.sh install          # apt-get the packages (idempotent, quick when present)
#   bash scripts/pickle-corpus.sh generate <dir>   # write the benign files and manifest.json into <dir>
#   bash scripts/pickle-corpus.sh verify           # load every malicious file under its real loader
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=/usr/bin/python3
PACKAGES=(python3 python3-torch python3-sklearn python3-joblib python3-numpy python3-lz4)
CORPUS=test/fixtures/pickle-corpus

log() { printf '[pickle-corpus] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

cmd_install() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "packages already installed"
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "install needs root (apt-get); missing: ${missing[*]}"
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

case "${1:-}" in
  install) cmd_install ;;
  generate)
    [ -n "${2:-}" ] || die "usage: $0 generate <dir>"
    exec "$PYTHON" "$CORPUS/generate_benign.py" "$2"
    ;;
  verify) exec "$PYTHON" "$CORPUS/verify_malicious.py" "${@:2}" ;;
  *) die "usage: $0 install | generate <dir> | verify" ;;
esac
