#!/usr/bin/env bash
# ACT and the DDPM head on pick-place images (one H100 lease), where at lr 1e-3 with their
# defaults they reached 12-14% while flow reached 88%. Each run changes one thing:
#   act:use_vae=false        no CVAE: does the latent carry what z = 0 then lacks at inference?
#   act:lr=1e-4              ACT's reference learning rate
#   diffusion:prediction=sample   clean-chunk prediction: the condition's gradient is not
#                            scaled down by sqrt(SNR) near pure noise as with epsilon
#   diffusion:lr=1e-4        diffusion_policy's reference learning rate
# Needs .whl/, .gl/ and VLASCOPE_CACHE as device_issue4.sh does. Logs go to $OUT.
set -u
OUT=${OUT:-outputs}
mkdir -p "$OUT"
export MUJOCO_GL=egl PYOPENGL_PLATFORM=egl PYTHONUNBUFFERED=1
python3 benchmarks/image_policies.py --tasks pick-place-v3 --steps 10000 --batch-size 128 \
    --policies act:use_vae=false act:lr=1e-4 diffusion:prediction=sample diffusion:lr=1e-4 \
    --workers 4 --out /tmp/img_next > "$OUT/image_next.log" 2>&1
cp /tmp/img_next/results.json "$OUT/image_next.json"
echo ALL DONE >> "$OUT/image_next.log"
