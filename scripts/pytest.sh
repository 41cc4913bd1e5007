#!/usr/bin/env bash
# Lints python/ with ruff (checks and formatting) and type-checks the package (mypy --strict), then
# runs the Python tests (python/tests/: serve with the real MLflow client, and the `modelgate`
# package) in the virtual environment scripts/python-env.sh keeps, after installing it when it is
# missing or out of date. They drive the built CLI (dist/cli.js): `npm test` runs this after the
# build and vitest. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/python-env.sh
.venv/bin/ruff check python/
.venv/bin/ruff format --check python/
.venv/bin/mypy --strict python/src/modelgate
exec .venv/bin/python -m pytest python/tests "$@"
