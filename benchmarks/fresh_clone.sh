#!/usr/bin/env bash
# The README's two commands as a newcomer meets them, timed phase by phase in a fresh clone:
#   1. `make install`   (what both commands do first on a fresh machine: create .venv, install everything)
#   2. `make test`      (with the venv now warm: the sync check, then pytest)
#   3. `make reproduce` (warm: the smoke profile's series)
#   4. `make install check-sync` again: what a second `make test` does before pytest starts
# A fresh `make test` takes (1) + (2), a fresh `make reproduce` (1) + (3).
#   [DEST=folder] benchmarks/fresh_clone.sh [repo]   (default: this checkout's committed HEAD, cloned into a
#   temporary folder; DEST beside ../shared lets the tests that need the real samples run)
set -euo pipefail
repo=${1:-$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)}
dir=${DEST:-$(mktemp -d)/ich_nb}
git clone -q "$repo" "$dir"
logs=$(mktemp -d)
cd "$dir"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(python3 --version), commit $(git rev-parse --short HEAD)"
phase() {   # phase NAME make-args...
  local name=$1; shift
  local start end
  start=$(date +%s.%N)
  make "$@" > "$logs/$name.log" 2>&1 || { tail -40 "$logs/$name.log"; exit 1; }
  end=$(date +%s.%N)
  printf '%-28s %7.1f s   %s\n' "$name" "$(python3 -c "print($end - $start)")" \
    "$(grep -E '^=+ .*(passed|failed)|Report:' "$logs/$name.log" | tr -d '=' | tail -1)"
}
phase "make install (fresh)" install
phase "make test (warm venv)" test
phase "make reproduce (warm venv)" reproduce
phase "before pytest, second time" install check-sync
echo "venv size: $(du -sh .venv | cut -f1)"
cd /
rm -rf "$dir" "$logs"
