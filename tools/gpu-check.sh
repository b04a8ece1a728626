#!/usr/bin/env bash
# On the device machine, from the repository root (see tools/gpu-check-prepare.sh): install the carried
# wheels beside the image's torch, run tools/paper_gpu_check.py, and leave its JSON and log under $OUT.
# Arguments go to the check (default: --device cuda --steps 500).
set -euo pipefail
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$(mktemp -d)}
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 ADBENCH_CACHE_DIR=${ADBENCH_CACHE_DIR:-/tmp/adbench-cache}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee "$OUT/gpu.txt" || true
"$PYTHON" tools/paper_gpu_check.py --out "$OUT/paper-gpu-check.json" "$@" 2>&1 | tee "$OUT/paper-gpu-check.log"
