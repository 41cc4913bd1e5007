#!/usr/bin/env bash
# The Python half of the test set-up: a virtual environment at .venv/ (ignored by git) holding
# python/requirements-test.txt, pinned exactly (the real MLflow client and tracking server that
# serve is tested against, scikit-learn, pytest, schemathesis). Idempotent: the requirements'
# sha256 is stamped in .venv once they are installed, and a run that finds the same stamp does
# nothing. PYTHON picks the interpreter (default: python3, 3.10 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=python/requirements-test.txt
venv=.venv
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

python="${PYTHON:-python3}"
"$python" - <<'PY' || { echo "python-env: $python is older than 3.10; set PYTHON to a newer interpreter" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY

# No stamp with another hash survives a failed install: the next run starts over.
rm -f "$stamp"
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
echo "$want" >"$stamp"
echo "python-env: installed $requirements into $venv" >&2
