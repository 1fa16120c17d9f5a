#!/usr/bin/env bash
# Build every workspace package into .device-wheels/ (git-ignored) so a GPU
# machine without network or hatchling can `pip install --no-deps` them.
# Usage (here):   scripts/device-wheels.sh
# Then (device):  python3 -m pip install -q --no-deps --no-index --force-reinstall .device-wheels/*.whl
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .device-wheels && mkdir -p .device-wheels
for p in packages/*/; do
  uv build --quiet --wheel --out-dir .device-wheels "$p"
done
ls .device-wheels
