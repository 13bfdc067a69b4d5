#!/usr/bin/env bash
# Self-checks of the PyTorch reference (tests/reference/), the golden fixtures and the Python tools.
# Prints PASS/FAIL/SKIP lines; exits non-zero on a failure; SKIP and exit 0 without torch.
set -u
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
if ! [ -x "$PY" ] || ! "$PY" -c "import torch, numpy" >/dev/null 2>&1; then
  echo "SKIP reference_py: $PY cannot import torch and numpy"
  exit 0
fi
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} exec "$PY" tests/reference/test_reference.py
