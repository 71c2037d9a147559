#!/usr/bin/env bash
# Download the paper's datasets: RSNA 2019 (Kaggle, about 180 GB) and CQ500 (qure.ai, tens of GB).
#
#   ./data_download.sh --dest DIR [--only rsna|cq500] [--dry-run]
#
# DIR/rsna/   Kaggle's rsna-intracranial-hemorrhage-detection.zip, unpacked: index it with
#             ich_nb.data.index_rsna(DIR/rsna/rsna-intracranial-hemorrhage-detection)
# DIR/cq500/  reads.csv and one folder per study (CQ500CT<n> CQ500CT<n>/...): index_cq500(DIR/cq500)
#
# Resumable (a partial file continues where it stopped) and idempotent (a finished download is
# not fetched again). Zips are tested before they are unpacked, and a zip whose entries would land
# outside DIR is refused. Any failure stops the script with a message and a non-zero exit status.
#
# Environment:
#   CQ500_BASE_URL   where the CQ500 zips and reads.csv are (default: qure.ai's public bucket)
#   CQ500_STUDIES    which studies: a range "0-490" (default) or a list "0 5 12"
#   KAGGLE_COMPETITION  default rsna-intracranial-hemorrhage-detection
set -euo pipefail

CQ500_BASE_URL=${CQ500_BASE_URL:-https://s3.ap-south-1.amazonaws.com/qure.headct.study}
CQ500_STUDIES=${CQ500_STUDIES:-0-490}
COMPETITION=${KAGGLE_COMPETITION:-rsna-intracranial-hemorrhage-detection}
dest="" only="" dry=0

die() { echo "data_download.sh: $*" >&2; exit 1; }
say() { echo "data_download.sh: $*"; }
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dest) [ $# -ge 2 ] || die "--dest needs a folder"; dest=$2; shift 2 ;;
    --dest=*) dest=${1#--dest=}; shift ;;
    --only) [ $# -ge 2 ] || die "--only needs rsna or cq500"; only=$2; shift 2 ;;
    --only=*) only=${1#--only=}; shift ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "data_download.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
[ -n "$dest" ] || die "say where to put the data: --dest DIR (see --help)"
case "$only" in ""|rsna|cq500) ;; *) die "--only takes rsna or cq500, not '$only'" ;; esac
command -v python3 >/dev/null || die "python3 is needed to test and unpack the zips"
if [ "$dry" = 0 ]; then mkdir -p "$dest"; dest=$(cd "$dest" && pwd); fi

# Test a zip and unpack it into a folder, refusing entries that would land outside it.
unpack() {  # unpack ZIP INTO
  python3 - "$1" "$2" <<'PY'
import os, sys, zipfile
zpath, into = sys.argv[1], os.path.realpath(sys.argv[2])
try:
    z = zipfile.ZipFile(zpath)
    bad = z.testzip()
except (zipfile.BadZipFile, OSError) as e:
    sys.exit(f"{zpath}: not a valid zip ({e})")
if bad: sys.exit(f"{zpath}: entry {bad} is corrupt")
for m in z.infolist():
    target = os.path.realpath(os.path.join(into, m.filename))
    if os.path.isabs(m.filename) or not (target == into or target.startswith(into + os.sep)):
        sys.exit(f"{zpath}: entry {m.filename!r} would be written outside {into}; refusing to unpack this zip")
z.extractall(into)
PY
}

fetch() {  # fetch URL FILE: resumable download to FILE.part, moved to FILE when complete
  local url=$1 file=$2
  if [ -f "$file" ]; then return 0; fi
  if [ "$dry" = 1 ]; then say "would download $url -> $file"; return 0; fi
  local rc=0
  curl -fsSL --retry 3 --retry-delay 2 -C - -o "$file.part" "$url" || rc=$?
  if [ $rc -eq 33 ] || [ $rc -eq 22 ] && [ -s "$file.part" ]; then   # server ignores ranges or the part is stale: start over
    rm -f "$file.part"; rc=0; curl -fsSL --retry 3 --retry-delay 2 -o "$file.part" "$url" || rc=$?
  fi
  [ $rc -eq 0 ] || die "downloading $url failed (curl exit $rc). Run the same command again to resume."
  mv "$file.part" "$file"
}

check_studies() {  # in the main shell, so that die stops the script (inside $(...) it would not)
  if [[ "$CQ500_STUDIES" =~ ^([0-9]+)-([0-9]+)$ ]]; then
    [ "${BASH_REMATCH[1]}" -le "${BASH_REMATCH[2]}" ] && [ "${BASH_REMATCH[2]}" -le 490 ] \
      || die "CQ500_STUDIES: '$CQ500_STUDIES' is not a range within 0-490"
    return 0
  fi
  [ -n "${CQ500_STUDIES// }" ] || die "CQ500_STUDIES is empty: give a range like 0-490 or numbers like '0 5 12'"
  for n in $CQ500_STUDIES; do
    { [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -le 490 ]; } || die "CQ500_STUDIES: '$n' is not a CQ500 study number (0-490)"
  done
}

studies() {
  if [[ "$CQ500_STUDIES" =~ ^([0-9]+)-([0-9]+)$ ]]; then seq "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
  else printf '%s\n' $CQ500_STUDIES; fi
}

get_cq500() {
  local out=$dest/cq500; [ "$dry" = 1 ] || mkdir -p "$out/zips" "$out/.unpacked"
  fetch "$CQ500_BASE_URL/reads.csv" "$out/reads.csv"
  local n name got=0 had=0
  for n in $(studies); do
    name=CQ500-CT-$n
    if [ -f "$out/.unpacked/$name" ]; then had=$((had + 1)); continue; fi
    fetch "$CQ500_BASE_URL/$name.zip" "$out/zips/$name.zip"
    [ "$dry" = 1 ] && continue
    if ! msg=$(unpack "$out/zips/$name.zip" "$out" 2>&1); then
      case "$msg" in
        *"outside"*) die "$msg. It is kept for inspection; it is not the zip CQ500 publishes: check CQ500_BASE_URL, delete the zip and run again." ;;
        *) rm -f "$out/zips/$name.zip"; die "$msg. The zip was deleted. Run the same command again to download it anew." ;;
      esac
    fi
    touch "$out/.unpacked/$name"; got=$((got + 1))
  done
  [ "$dry" = 1 ] || say "CQ500: $got studies unpacked now, $had already there, in $out"
}

get_rsna() {
  local out=$dest/rsna
  local zip=$out/$COMPETITION.zip
  if [ -f "$out/.unpacked" ]; then say "RSNA: already unpacked in $out"; return 0; fi
  if [ "$dry" = 1 ]; then say "would run: kaggle competitions download -c $COMPETITION -p $out, then unpack $zip"; return 0; fi
  mkdir -p "$out"
  command -v kaggle >/dev/null || die "the Kaggle command-line tool is not installed. Install it with 'pip install kaggle',
  then create an API token (kaggle.com > Settings > API > Create New Token), save it as ~/.kaggle/kaggle.json
  (chmod 600 ~/.kaggle/kaggle.json), accept the competition's rules at
  https://www.kaggle.com/competitions/$COMPETITION/rules, and run this again."
  local cfg=${KAGGLE_CONFIG_DIR:-$HOME/.kaggle}/kaggle.json
  if [ ! -f "$cfg" ] && { [ -z "${KAGGLE_USERNAME:-}" ] || [ -z "${KAGGLE_KEY:-}" ]; }; then
    die "no Kaggle API token: create one (kaggle.com > Settings > API > Create New Token), save it as $cfg
  (chmod 600 $cfg) or set KAGGLE_USERNAME and KAGGLE_KEY, accept the rules at
  https://www.kaggle.com/competitions/$COMPETITION/rules, and run this again."
  fi
  if [ ! -f "$zip" ] || ! python3 -c "import sys, zipfile; sys.exit(zipfile.ZipFile(sys.argv[1]).testzip() is not None)" "$zip" 2>/dev/null; then
    kaggle competitions download -c "$COMPETITION" -p "$out" || die "kaggle could not download $COMPETITION (see its message above). Run the same command again to resume."
  fi
  [ -f "$zip" ] || die "kaggle finished but $zip is not there"
  unpack "$zip" "$out" || die "unpacking $zip failed (see above). Delete it and run again to download it anew."
  touch "$out/.unpacked"
  say "RSNA: unpacked in $out"
}

[ "$only" = rsna ] || check_studies                # before any download: a wrong list stops here
[ "$only" = cq500 ] || get_rsna
[ "$only" = rsna ] || get_cq500
