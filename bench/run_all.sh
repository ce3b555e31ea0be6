#!/usr/bin/env bash
# Runs every benchmark in bench/ in turn; each prints a table and ends with one JSON line.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
for b in bench/bench_*.py; do
  echo "== $b"
  "$py" "$b"
done
