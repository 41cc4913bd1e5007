#!/usr/bin/env bash
# Runs the Python tests (python/tests/) in the virtual environment scripts/python-env.sh keeps,
# after installing it when it is missing or out of date. They drive the built CLI (dist/cli.js):
# `npm test` runs this after the build and vitest. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/python-env.sh
exec .venv/bin/python -m pytest python/tests "$@"
