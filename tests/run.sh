#!/usr/bin/env bash
# The test command: the README's second command and what CI (.ci/run) runs, so the two cannot differ.
# On a fresh machine it creates .venv and installs the test extra; arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
exec .venv/bin/python -m pytest -q "$@"
