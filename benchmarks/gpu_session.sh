#!/bin/bash
# One GPU session, as DEVELOPERS.md describes: the wheels in .whl/ installed, benchmarks/gpu.py,
# then the workshop series end to end on the GPU. Run on the device machine from the repo root:
#     bash benchmarks/gpu_session.sh OUT_DIR [BENCH_SECONDS] [WORKSHOP_SECONDS]
set -u
out=${1:?usage: gpu_session.sh OUT_DIR [BENCH_SECONDS] [WORKSHOP_SECONDS]}; bench=${2:-380}; ws=${3:-180}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/nvidia-smi.txt"
python3 -c "import ich_nb.cnn, ich_nb.pipeline, papermill, pydicom, timm; print('imports ok, timm', timm.__version__)" || exit 1
timeout "$bench" python3 benchmarks/gpu.py --out "$out" --budget $((bench - 50)) 2>&1 | tee "$out/gpu.log"
t=$(date +%s)
timeout "$ws" python3 -c 'import sys; from ich_nb.cli import main; sys.exit(main())' \
    reproduce --profile workshop --run-dir /tmp/ws -p workers 16 2>&1 | tee "$out/workshop.log"
echo "workshop: exit ${PIPESTATUS[0]} after $(( $(date +%s) - t )) s" | tee -a "$out/workshop.log"
cp /tmp/ws/metrics.json "$out/workshop_metrics.json" 2>/dev/null
cp /tmp/ws/manifest.json "$out/workshop_manifest.json" 2>/dev/null
exit 0
