#!/usr/bin/env bash
# Here, before the GPU check: fill .whl/ (ignored by git, carried to the device machine) with what that
# machine lacks. Its image holds torch and every dependency of adbench but kornia; it reaches no
# registry, so adbench itself and kornia's wheels travel. Then, with the device tool:
#   run  carry [".whl"]  command "bash tools/gpu-check.sh"  timeout_s 480
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude
rm -rf .whl && mkdir .whl
# The device's python3 is CPython 3.12 on x86-64 (/work/.library/device/KINDS.md).
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "kornia==0.9.0" "kornia_rs==0.2.0"
rm -rf build  # setuptools reuses build/lib, deleted modules included
python3 -m pip wheel -q --no-deps -w .whl .
rm -rf build
ls -l .whl
