#!/usr/bin/env bash
# LeRobot on the offline GPU machine, for vs_lerobot.py (6 MB of wheels; the machine already has
# torch, torchvision, transformers 5, pandas, pyarrow, huggingface_hub, einops, imageio).
#
#   bash benchmarks/lerobot_offline.sh download   # here, with network: wheels into .lrwhl/
#   bash benchmarks/lerobot_offline.sh install    # there (carry .lrwhl): /tmp/lrsite and /tmp/lrpy
#
# lerobot 0.4.4 needs two import-time edits there, applied to the installed files unless the wheel
# already has them (the repacked lerobot-0.4.4-1 wheel in .lrwhl does): PyAV (40 MB,
# only for dataset videos) becomes optional, and transformers >= 5 counts as absent (0.4.4
# supports < 5 only and its GR00T config fails at import under 5.x; ACT and Diffusion do not use
# transformers). /tmp/lrpy is a python3 that sees /tmp/lrsite: pass it as --lerobot-python.
set -eu
case "${1:-}" in
download)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d .lrwhl lerobot==0.4.4 diffusers==0.35.2 datasets==4.8.5 multiprocess==0.70.19 \
    dill==0.4.1 deepdiff==8.6.2 pyserial==3.5 draccus==0.10.0 orderly-set==5.5.0 \
    typing-inspect==0.9.0 mergedeep==1.3.4 mypy-extensions==1.2.0
  ;;
install)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/lrsite .lrwhl/*.whl
  rm -rf /tmp/lrsite/tests /tmp/lrsite/examples  # draccus ships these at the top level
  python3 - <<'PY'
from pathlib import Path

site = Path("/tmp/lrsite/lerobot")
video = site / "datasets/video_utils.py"
if "\nimport av\n" in video.read_text():  # the repacked wheel (build tag 1) has both edits already
    video.write_text(video.read_text().replace(
        "\nimport av\n",
        "\ntry:\n    import av\nexcept ImportError:  # only dataset video I/O needs PyAV\n"
        "    import types as _types\n\n    av = _types.SimpleNamespace(logging=_types.SimpleNamespace(WARNING=24))\n", 1))
utils = site / "utils/import_utils.py"
old = '_transformers_available = is_package_available("transformers")'
text = utils.read_text()
assert old in text or "_transformers_available = False" in text, \
    "lerobot's import_utils changed: check the transformers guard"
utils.write_text(text.replace(old, (
    '_transformers_available, _transformers_version = is_package_available("transformers", return_version=True)\n'
    '# transformers >= 5 counts as absent: lerobot 0.4.4 supports < 5 only\n'
    'if _transformers_available and int(_transformers_version.split(".")[0]) >= 5:\n'
    '    _transformers_available = False'), 1))
PY
  printf '#!/bin/sh\nPYTHONPATH=/tmp/lrsite${PYTHONPATH:+:$PYTHONPATH} exec python3 "$@"\n' > /tmp/lrpy
  chmod +x /tmp/lrpy
  ;;
*)
  echo "usage: $0 download|install" >&2
  exit 2
  ;;
esac
