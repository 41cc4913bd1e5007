#!/usr/bin/env bash
# The Python half of the test set-up: a virtual environment at .venv/ (ignored by git) holding
# python/requirements-test.txt, pinned exactly (the real MLflow client and tracking server that
# serve is tested against, scikit-learn, pytest, schemathesis, ruff) and the `modelgate` package
# of python/, installed as users install it (`pip install ./python`). Idempotent: one sha256 over
# the requirements and the package's files is stamped in .venv once they are installed, and a run
# that finds the same stamp does nothing. PYTHON picks the interpreter (default: python3, 3.10 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=python/requirements-test.txt
venv=.venv
stamp="$venv/.requirements.sha256"
want="$(
  {
    sha256sum "$requirements" python/pyproject.toml python/README.md
    find python/src -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
)"

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
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps ./python
rm -rf python/build python/src/*.egg-info
echo "$want" >"$stamp"
echo "python-env: installed $requirements and ./python into $venv" >&2
