#!/usr/bin/env bash
# The next pick-place image experiment (one H100 lease). Measured so far (50 demos, 10k steps):
# flow 88%; diffusion (epsilon, U-Net) 12%, (epsilon, MLP) 6%, (clean-chunk prediction) 10%;
# ACT 14%, without its CVAE 14%. So neither the CVAE latent nor the DDPM loss weighting is the
# cause. Every run here is also evaluated from the demos' own initial states (--demo-states):
# success there and not from new states means memorised scenes (each demo's goal is a unique
# key to its puck position); failure there too means the policy cannot even replay its data.
# Beside flow as the control: the reference learning rate (1e-4), and for ACT a finer token
# grid: at 96 px its default 6 x 6 cells are ~14 px each, coarser than the puck it must grasp,
# where flow and diffusion read sub-pixel spatial-softmax keypoints; two trunk stages give 11 x 11.
# Needs .whl/, .gl/ and VLASCOPE_CACHE as device_issue4.sh does; start it with setsid so it
# outlives the call that starts it. Each run writes result.json when it ends. Logs go to $OUT.
set -u
OUT=${OUT:-outputs}
mkdir -p "$OUT"
export MUJOCO_GL=egl PYOPENGL_PLATFORM=egl PYTHONUNBUFFERED=1
python3 benchmarks/image_policies.py --tasks pick-place-v3 --steps 10000 --batch-size 128 \
    --policies flow diffusion act act:vision_token_stages=2 diffusion:lr=1e-4 act:lr=1e-4 \
    --demo-states --workers 6 --eval-workers 2 --out /tmp/img_next > "$OUT/image_next.log" 2>&1
cp /tmp/img_next/results.json "$OUT/image_next.json"
echo ALL DONE >> "$OUT/image_next.log"
