#!/usr/bin/env bash
# Issue 6's figures on the H100 machine (16 cores), on a quiet GPU: closed-loop eval speed
# against the simulator's limit, vlascope against LeRobot (needs /tmp/lrpy: a python3 with
# LeRobot on its path, from `bash benchmarks/lerobot_offline.sh install`), and compiled
# inference. All of it takes about 17 minutes, more than one 10-minute call: start it with
# setsid and poll (see benchmarks/README.md). Name steps to run only those:
#   bash benchmarks/device_issue6.sh [eval] [eval8] [lerobot] [speed]
# Each step has its own time limit and its own log in $OUT; "ALL DONE" ends machine.txt.
# Session 6 (benchmarks/README.md): eval 72% of the limit compiled (4 envs a worker); lerobot
# training 2.5x (4.8-4.9x compiled) with each data pipeline, inference 10-24x compiled;
# speed ran out of time (250 s) before its first row.
set -u
OUT=${OUT:-outputs}
STEPS=${*:-eval lerobot speed}
mkdir -p "$OUT"
export MUJOCO_GL=egl PYOPENGL_PLATFORM=egl PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/machine.txt"
nproc >> "$OUT/machine.txt"
for step in $STEPS; do
  case $step in
  eval)
    timeout 300 python3 benchmarks/eval_speed.py --workers 15 --envs-per-worker 2 4 --episodes 1000 \
        --max-steps 200 --seconds 20 --compile > "$OUT/eval_speed.log" 2>&1 ;;
  eval8)  # more envs per worker (more of each worker's time is spent stepping) and more
    # episodes (the last wave, when workers run out of episodes, weighs less)
    timeout 480 python3 benchmarks/eval_speed.py --workers 15 --envs-per-worker 8 16 --episodes 2000 \
        --max-steps 200 --seconds 20 --compile > "$OUT/eval_speed8.log" 2>&1 ;;
  lerobot)
    # Compiling the image models' training step takes longer than 300 s: eager training there.
    timeout 420 python3 benchmarks/vs_lerobot.py --lerobot-python /tmp/lrpy --device cuda \
        --batch-size 64 --steps 30 --chunks 30 --compile-inference --compile-train > "$OUT/vs_lerobot_state.log" 2>&1
    timeout 300 python3 benchmarks/vs_lerobot.py --lerobot-python /tmp/lrpy --device cuda --image 96 \
        --batch-size 64 --steps 20 --chunks 20 --compile-inference > "$OUT/vs_lerobot_image.log" 2>&1 ;;
  speed)
    timeout 540 python3 benchmarks/speed.py --image 96 --policies diffusion act mse \
        --steps 30 --chunks 30 --compile-inference > "$OUT/speed_compiled.log" 2>&1 ;;
  esac
  echo "$step done" >> "$OUT/machine.txt"
done
echo ALL DONE >> "$OUT/machine.txt"
