#!/usr/bin/env bash
# The GPU machine (no MetaWorld, no display, commands cut at 10 minutes): set it up once, start
# a benchmark detached (setsid) so that it outlives the command that started it, and poll it.
#
#   bash benchmarks/gpu.sh start NAME COMMAND...   set up if needed, start COMMAND as job NAME
#   bash benchmarks/gpu.sh poll [SECONDS]          wait up to SECONDS (default 0) while jobs run;
#                                                  then pack every job's log and exit status and
#                                                  every results JSON into $OUT/jobs.tgz (one
#                                                  file: at most 8 come back from the machine);
#                                                  here: tar xzf jobs.tgz (logs/, results/)
#   bash benchmarks/gpu.sh setup                   the set-up alone
#   bash benchmarks/gpu.sh keep NAME PATH...       PATHs (e.g. a checkpoint's config.json,
#                                                  normalizer.safetensors and ema.safetensors) into
#                                                  $OUT as NAME.tgz, in parts of at most 15 MiB
#                                                  (what comes back from the machine is at most 8
#                                                  files of 16 MiB); here: cat NAME.tgz.part* | tar xz
#
# Name the commit for the results JSONs with VLASCOPE_COMMIT=<hash> where the copy of the working
# tree has no up-to-date .git. Jobs write their results JSONs to $VLASCOPE_RESULTS_DIR, by default
# /tmp/vlascope-results: outside the copy of the working tree, which each command may replace.
#
# e.g. bash benchmarks/gpu.sh start act python3 benchmarks/image_policies.py --recipe act-pick-place
#
# Carry from the repository root: .whl/ (MetaWorld's wheels, see benchmarks/README.md), .gl/ (the
# EGL loader packages) and, for language-conditioned runs, .vlcache/ (instruction embeddings
# computed here: the sentence encoder is not carried). A job's output goes to $JOBS/NAME.log,
# its exit status to $JOBS/NAME.rc.
set -u
OUT=${OUT:-outputs}
JOBS=/tmp/vlascope-jobs
SITE=/tmp/vlascope-site
RESULTS=${VLASCOPE_RESULTS_DIR:-/tmp/vlascope-results}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

setup() {
  [ -f "$SITE/.ready" ] && return 0
  if [ -d "$ROOT/.gl" ]; then
    for f in "$ROOT"/.gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" "$ROOT"/.whl/*.whl || { echo "gpu.sh: installing .whl/*.whl failed" >&2; return 1; }
  # A later command that does not carry .vlcache takes it away from jobs still running: copy it.
  if [ -d "$ROOT/.vlcache" ]; then cp -r "$ROOT/.vlcache" /tmp/vlascope-cache; fi
  mkdir -p "$JOBS"
  { nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; echo "$(nproc) CPU cores"; } \
      > "$JOBS/machine.txt" 2>&1
  touch "$SITE/.ready"
}

environment() {
  export MUJOCO_GL=egl PYOPENGL_PLATFORM=egl PYTHONUNBUFFERED=1
  export PYTHONPATH="$SITE:$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
  export VLASCOPE_RESULTS_DIR=$RESULTS
  [ -d /tmp/vlascope-cache ] && export VLASCOPE_CACHE=/tmp/vlascope-cache
  if ! ldconfig -p | grep -q libEGL_nvidia; then
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  fi
}

poll() {
  local wait=${1:-0} end=$((SECONDS + ${1:-0}))
  while [ "$wait" -gt 0 ] && [ $SECONDS -lt $end ] && running; do sleep 10; done
  local pack
  pack=$(mktemp -d)
  mkdir -p "$pack/logs" "$pack/results" "$OUT"
  cp "$JOBS"/*.log "$JOBS"/*.rc "$JOBS"/machine.txt "$pack/logs/" 2>/dev/null
  cp "$RESULTS"/*.json "$pack/results/" 2>/dev/null
  tar czf "$OUT/jobs.tgz" -C "$pack" logs results && rm -rf "$pack"
  for log in "$JOBS"/*.log; do
    [ -f "$log" ] || continue
    name=$(basename "$log" .log)
    if [ -f "$JOBS/$name.rc" ]; then state="ended, exit status $(cat "$JOBS/$name.rc")"; else state=running; fi
    echo "== $name: $state"
    tr '\r' '\n' < "$log" | grep -v '^$' | tail -n 5 | cut -c1-300
  done
}

running() {
  for pidfile in "$JOBS"/*.pid; do
    [ -f "$pidfile" ] || continue
    name=$(basename "$pidfile" .pid)
    [ -f "$JOBS/$name.rc" ] || return 0
  done
  return 1
}

case "${1:-}" in
setup)
  setup ;;
start)
  [ $# -ge 3 ] || { echo "usage: $0 start NAME COMMAND..." >&2; exit 2; }
  name=$2
  shift 2
  setup || exit 1
  environment
  rm -f "$JOBS/$name.rc"
  cd "$ROOT" && setsid nohup bash -c '"$@"; echo $? > "'"$JOBS/$name.rc"'"' job "$@" \
      > "$JOBS/$name.log" 2>&1 < /dev/null &
  echo $! > "$JOBS/$name.pid"
  echo "started $name (pid $!): $*" ;;
poll)
  poll "${2:-0}" ;;
keep)
  [ $# -ge 3 ] || { echo "usage: $0 keep NAME PATH..." >&2; exit 2; }
  name=$2
  shift 2
  mkdir -p "$OUT"
  tar czf - "$@" | split -b 15M -d -a 2 - "$OUT/$name.tgz.part" || exit 1
  parts=$(ls "$OUT/$name.tgz.part"* | wc -l)
  if [ "$parts" -gt 8 ]; then echo "gpu.sh: $name needs $parts parts; at most 8 files come back" >&2; exit 1; fi
  ls -l "$OUT/$name.tgz.part"* ;;
*)
  sed -n 2,22p "$0" >&2
  exit 2 ;;
esac
