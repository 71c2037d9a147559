#!/bin/bash
# One GPU session, as DEVELOPERS.md describes: the wheels in .whl/ installed, the workshop series end
# to end on the GPU, then benchmarks/gpu.py for the time left. Run on the device machine from the
# repo root:
#     bash benchmarks/gpu_session.sh OUT_DIR [TOTAL_SECONDS] [WORKSHOP_SECONDS (0: none)] [gpu.py options...]
set -u
out=${1:?usage: gpu_session.sh OUT_DIR [TOTAL_SECONDS] [WORKSHOP_SECONDS] [gpu.py options...]}
total=${2:-560}; ws=${3:-240}; shift $(( $# < 3 ? $# : 3 ))
t0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/nvidia-smi.txt"
python3 -c "import ich_nb.cnn, ich_nb.pipeline, papermill, pydicom, timm; print('imports ok, timm', timm.__version__)" || exit 1
echo "installed in $(( $(date +%s) - t0 )) s"
if [ "$ws" -gt 0 ]; then                      # WORKSHOP_SECONDS 0: no workshop series
    t=$(date +%s)
    timeout "$ws" python3 -c 'import sys; from ich_nb.cli import main; sys.exit(main())' \
        reproduce --profile workshop --run-dir /tmp/ws -p workers 16 2>&1 | tee "$out/workshop.log"
    echo "workshop: exit ${PIPESTATUS[0]} after $(( $(date +%s) - t )) s" | tee -a "$out/workshop.log"
    cp /tmp/ws/metrics.json "$out/workshop_metrics.json" 2>/dev/null
    cp /tmp/ws/manifest.json "$out/workshop_manifest.json" 2>/dev/null
fi
bench=$(( total - ($(date +%s) - t0) - 10 ))
echo "gpu.py: $bench s left"
timeout "$bench" python3 benchmarks/gpu.py --out "$out" --budget $((bench - 20)) "$@" 2>&1 | tee "$out/gpu.log"
exit 0
