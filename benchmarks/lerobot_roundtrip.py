"""Round trip against the real `lerobot` package (v3.0 datasets), in two Python environments:
vlascope's, and one where `lerobot` installs (it needs torchvision, which this project's CPU
machines do not have; `python -m venv lr && lr/bin/pip install lerobot` pulls it with CUDA torch).

    python benchmarks/lerobot_roundtrip.py --dataset data/pick-place.hdf5 --work /tmp/rt \\
        --lerobot-python lr/bin/python

1. vlascope exports the dataset to the LeRobot layout and saves its arrays as reference;
2. lerobot's LeRobotDataset loads that folder: every frame's action, state and image are
   compared with the reference;
3. lerobot writes the reference arrays as a dataset of its own (LeRobotDataset.create,
   add_frame, save_episode), which vlascope reads back and compares.
Prints the largest differences; exits non-zero when a numeric field differs or an image is off
by more than the video codec's loss.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _provenance import parse_args, write_results  # noqa: E402

IMAGE_TOLERANCE = 6.0  # mean absolute grey-level difference a lossy video codec may leave


def lerobot_side(work: Path) -> dict:
    """Runs where `lerobot` is installed; vlascope is not imported here."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ref = np.load(work / "reference.npz")
    meta = json.loads((work / "reference.json").read_text())
    # pyav decodes with the FFmpeg its wheel bundles (torchcodec wants system FFmpeg libraries).
    ds = LeRobotDataset("vlascope/export", root=work / "exported", video_backend="pyav")
    out = {"frames": len(ds), "episodes": ds.num_episodes, "max_action_diff": 0.0,
           "max_state_diff": 0.0, "image_mean_abs_diff": 0.0}
    image_keys = [k for k in ds.meta.video_keys]
    for i in range(len(ds)):
        item = ds[i]
        out["max_action_diff"] = max(out["max_action_diff"], float(np.abs(item["action"].numpy() - ref["action"][i]).max()))
        out["max_state_diff"] = max(out["max_state_diff"], float(np.abs(item["observation.state"].numpy() - ref["robot_state"][i]).max()))
        for k in image_keys:  # lerobot returns (C, H, W) floats in [0, 1]
            img = (item[k].numpy().transpose(1, 2, 0) * 255.0)
            out["image_mean_abs_diff"] = max(out["image_mean_abs_diff"],
                                             float(np.abs(img - ref[meta["images"][k]][i]).mean()))
    out["task"] = ds[0]["task"]
    # lerobot writes the same arrays as its own dataset.
    features = {"action": {"dtype": "float32", "shape": (ref["action"].shape[1],), "names": None},
                "observation.state": {"dtype": "float32", "shape": (ref["robot_state"].shape[1],), "names": None}}
    for k, ours in meta["images"].items():
        h, w, c = ref[ours].shape[1:]
        features[k] = {"dtype": "video", "shape": (h, w, c), "names": ["height", "width", "channels"]}
    own = LeRobotDataset.create("vlascope/own", fps=meta["fps"], features=features,
                                root=work / "written_by_lerobot", use_videos=True)
    for e, (lo, hi) in enumerate(meta["episodes"]):
        for i in range(lo, hi):
            frame = {"action": ref["action"][i], "observation.state": ref["robot_state"][i],
                     "task": meta["task"]}
            frame |= {k: ref[ours][i] for k, ours in meta["images"].items()}
            own.add_frame(frame)
        own.save_episode()
    own.finalize()
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--lerobot-python", required=True, help="a Python with `lerobot` installed")
    p.add_argument("--side", choices=["vlascope", "lerobot"], default="vlascope", help=argparse.SUPPRESS)
    args = parse_args(p)
    work = Path(args.work)
    if args.side == "lerobot":
        print(json.dumps(lerobot_side(work)))
        return

    import shutil

    from vlascope.data import read_dataset
    from vlascope.data.lerobot import feature_name, write_lerobot

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ours = read_dataset(args.dataset)
    fps = 80
    write_lerobot(work / "exported", ours, fps=fps)
    image_keys = [k for k, v in ours.episodes[0].obs.items() if v.dtype == np.uint8]
    ref = {"action": np.concatenate([e.actions for e in ours.episodes]),
           "robot_state": np.concatenate([e.obs["robot_state"] for e in ours.episodes])}
    ref |= {k: np.concatenate([e.obs[k] for e in ours.episodes]) for k in image_keys}
    np.savez(work / "reference.npz", **ref)
    bounds = np.cumsum([0] + [len(e) for e in ours.episodes])
    meta = {"fps": fps, "task": ours.attrs.get("instruction", ""),
            "episodes": [[int(a), int(b)] for a, b in zip(bounds[:-1], bounds[1:])],
            "images": {feature_name(k): k for k in image_keys}}
    (work / "reference.json").write_text(json.dumps(meta))
    proc = subprocess.run([args.lerobot_python, __file__, "--dataset", args.dataset, "--work", str(work),
                           "--lerobot-python", args.lerobot_python, "--side", "lerobot"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"lerobot side failed:\n{proc.stderr[-3000:]}")
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"lerobot read vlascope's export: {theirs['episodes']} episodes, {theirs['frames']} frames; "
          f"max |action diff| {theirs['max_action_diff']:.2e}, max |state diff| "
          f"{theirs['max_state_diff']:.2e}, image mean |diff| {theirs['image_mean_abs_diff']:.2f} "
          f"grey levels; task {theirs['task']!r}")
    back = read_dataset(work / "written_by_lerobot")
    actions = np.concatenate([e.actions for e in back.episodes])
    state = np.concatenate([e.obs["robot_state"] for e in back.episodes])
    image_diff = 0.0
    for k in image_keys:
        frames = np.concatenate([e.obs[k] for e in back.episodes]).astype(float)
        image_diff = max(image_diff, float(np.abs(frames - ref[k]).mean()))
    ours_ok = {"episodes": len(back.episodes), "max_action_diff": float(np.abs(actions - ref["action"]).max()),
               "max_state_diff": float(np.abs(state - ref["robot_state"]).max()), "image": image_diff}
    print(f"vlascope read lerobot's own writing: {ours_ok['episodes']} episodes; max |action diff| "
          f"{ours_ok['max_action_diff']:.2e}, max |state diff| {ours_ok['max_state_diff']:.2e}, image "
          f"mean |diff| {image_diff:.2f} grey levels; instruction {back.attrs.get('instruction')!r}")
    ok = (theirs["max_action_diff"] < 1e-6 and theirs["max_state_diff"] < 1e-6
          and ours_ok["max_action_diff"] < 1e-6 and ours_ok["max_state_diff"] < 1e-6
          and theirs["image_mean_abs_diff"] < IMAGE_TOLERANCE and image_diff < IMAGE_TOLERANCE
          and len(back.episodes) == len(ours.episodes))
    print("round trip:", "OK" if ok else "FAILED")
    write_results("lerobot_roundtrip", args, {"dataset": args.dataset, "lerobot_read_ours": theirs,
                                              "we_read_lerobots": ours_ok, "ok": ok})
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
