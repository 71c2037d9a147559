#!/usr/bin/env bash
# Time `make test` as a newcomer meets it: a fresh clone with no .venv (installs everything),
# then a second run that reuses the venv. Prints both wall times and pytest's summary.
#   benchmarks/make_test.sh [repo]   (default: this checkout's committed HEAD)
set -euo pipefail
repo=${1:-$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)}
dir=$(mktemp -d)/ich_nb
git clone -q "$repo" "$dir"
cd "$dir"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(python3 --version), commit $(git rev-parse --short HEAD)"
for run in fresh warm; do
  start=$(date +%s.%N)
  make test > "../make_test_$run.log" 2>&1 || { tail -40 "../make_test_$run.log"; exit 1; }
  end=$(date +%s.%N)
  printf '%-5s make test: %6.1f s   %s\n' "$run" "$(python3 -c "print($end - $start)")" "$(grep -E '^=+ .*(passed|failed)' "../make_test_$run.log" | tr -d '=')"
done
echo "venv size: $(du -sh .venv | cut -f1)"
rm -rf "$(dirname "$dir")"
