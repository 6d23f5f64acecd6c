#!/usr/bin/env bash
# Fetches what one GPU run carries (experiments/gpu_rows.py): the wheels of experiments/gpu_requirements.txt into
# .carry/wheels and the imagenet-dev images into .carry/data (both ignored by git; the device tool carries them).
#   JAXPLAIN_DATA=../shared/data experiments/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${JAXPLAIN_DATA:?set JAXPLAIN_DATA to the folder with imagenet-dev/}"
python -m pip wheel -q --no-deps -w .carry/wheels -r experiments/gpu_requirements.txt
mkdir -p .carry/data && cp -r "$JAXPLAIN_DATA/imagenet-dev" .carry/data/
echo "carry .carry/wheels and .carry/data; on the GPU machine run:"
echo "  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .carry/wheels/*.whl && \\"
echo "  PYTHONPATH=/tmp/site:. JAXPLAIN_DATA=.carry/data python3 experiments/gpu_rows.py --out \$OUT/gpu"
