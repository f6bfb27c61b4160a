#!/usr/bin/env bash
# Issue 6's figures on the H100 machine (16 cores), on a quiet GPU: closed-loop eval speed
# against the simulator's limit, vlascope against LeRobot (needs /tmp/lrpy: a python3 with
# LeRobot on its path, from `bash benchmarks/lerobot_offline.sh install`), and compiled
# inference. About 15 minutes, more than one 10-minute call: start it with setsid and poll (see
# benchmarks/README.md). Each step has its own time limit and its own log in $OUT.
set -u
OUT=${OUT:-outputs}
mkdir -p "$OUT"
export MUJOCO_GL=egl PYOPENGL_PLATFORM=egl PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/machine.txt"
nproc >> "$OUT/machine.txt"
timeout 300 python3 benchmarks/eval_speed.py --workers 15 --envs-per-worker 2 4 --episodes 1000 \
    --max-steps 200 --seconds 20 --compile > "$OUT/eval_speed.log" 2>&1
timeout 300 python3 benchmarks/vs_lerobot.py --lerobot-python /tmp/lrpy --device cuda \
    --batch-size 64 --steps 30 --chunks 30 --compile-inference --compile-train > "$OUT/vs_lerobot_state.log" 2>&1
timeout 300 python3 benchmarks/vs_lerobot.py --lerobot-python /tmp/lrpy --device cuda --image 96 \
    --batch-size 64 --steps 30 --chunks 30 --compile-inference --compile-train > "$OUT/vs_lerobot_image.log" 2>&1
timeout 250 python3 benchmarks/speed.py --image 96 --policies diffusion act mse \
    --steps 30 --chunks 30 --compile-inference > "$OUT/speed_compiled.log" 2>&1
echo ALL DONE >> "$OUT/machine.txt"
