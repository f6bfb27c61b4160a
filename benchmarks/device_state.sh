#!/usr/bin/env bash
# The state-policy benchmarks on a GPU machine with 16 cores (the H100 lent to sessions).
# Needs the MetaWorld wheels for its Python in .whl/ (see benchmarks/README.md). Logs go to $OUT.
set -u
OUT=${OUT:-outputs}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/machine.txt"
nproc >> "$OUT/machine.txt"
python3 benchmarks/speed.py > "$OUT/speed_gpu.log" 2>&1
python3 benchmarks/closed_loop.py --steps 20000 --workers 10 --out /tmp/closed_loop \
    > "$OUT/closed_loop.log" 2>&1
cp /tmp/closed_loop/results.json "$OUT/closed_loop.json"
python3 benchmarks/mt10.py --steps 30000 --workers 10 --out /tmp/mt10_state \
    > "$OUT/mt10_state.log" 2>&1
cp /tmp/mt10_state/results.json "$OUT/mt10_state.json"
echo ALL DONE >> "$OUT/machine.txt"
