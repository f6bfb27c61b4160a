#!/usr/bin/env bash
# Issue 4's GPU figures on the H100 machine (16 cores): speed per policy, ACT and the diffusion
# head (MLP denoiser) on images for three tasks, and a language-conditioned image policy over
# MT10. Needs the MetaWorld wheels in .whl/ and EGL (see benchmarks/README.md). Logs go to $OUT.
set -u
OUT=${OUT:-outputs}
mkdir -p "$OUT"
export MUJOCO_GL=egl PYOPENGL_PLATFORM=egl PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/machine.txt"
nproc >> "$OUT/machine.txt"
python3 benchmarks/speed.py --image 96 > "$OUT/speed_image.log" 2>&1
python3 benchmarks/speed.py --policies diffusion flow mse act > "$OUT/speed_state.log" 2>&1
python3 benchmarks/image_policies.py --policies act diffusion:denoiser=mlp --steps 10000 \
    --workers 6 --observability --out /tmp/img4 > "$OUT/image_policies.log" 2>&1 &
python3 benchmarks/mt10.py --obs image --steps 20000 --batch-size 256 --workers 10 \
    --out /tmp/mt10img > "$OUT/mt10_image.log" 2>&1 &
wait
cp /tmp/img4/results.json "$OUT/image_policies.json"
cp /tmp/mt10img/results.json "$OUT/mt10_image.json"
python3 benchmarks/speed.py --image 96 --compile --policies flow > "$OUT/speed_compile.log" 2>&1
echo ALL DONE >> "$OUT/machine.txt"
