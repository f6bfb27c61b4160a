"""Data-parallel scaling: the same `vlascope train` run with 1 process and with N processes
through `accelerate launch --multi_gpu` (one GPU each, the same batch per process, so N times
the samples per step). Prints steady-state samples/s of each and the scaling ratio, read from
the runs' own loss.csv (the median over the second half of the run, past compilation and
data upload), and whether the replicas ended with identical weights.

    python benchmarks/multi_gpu.py --dataset pick-place.hdf5 [--processes 2] [--steps 2000] \
        [--policy flow] [--batch-size 256] [--obs-keys robot_state goal corner2_image]

Without --dataset it collects 20 pick-place demos with 96 px corner2 frames first (EGL).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _provenance import parse_args, write_results  # noqa: E402
from _timing import steady_samples_per_second  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--policy", default="flow")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--obs-keys", nargs="+", default=["robot_state", "goal", "corner2_image"])
    p.add_argument("--out", default=None)
    p.add_argument("--device", help="cpu: check the recipe without GPUs (gloo, one core each)")
    args = parse_args(p)
    out = Path(args.out or tempfile.mkdtemp())
    dataset = args.dataset
    if dataset is None:
        from vlascope.envs.collect import collect_demos

        dataset = str(out / "pick-place.hdf5")
        collect_demos("pick-place-v3", 20, dataset, camera="corner2", image_size=96, progress=False)
    common = ["-m", "vlascope", "train", "--dataset", dataset, "--policy", args.policy,
              "--steps", str(args.steps), "--batch-size", str(args.batch_size),
              "--obs-keys", *args.obs_keys]
    launcher = Path(sys.executable).parent / "accelerate"
    launcher = [str(launcher), "launch"] if launcher.exists() else \
        [sys.executable, "-m", "accelerate.commands.launch"]
    if args.device:
        common += ["--device", args.device]
    runs = {1: [sys.executable, *common, "--out", str(out / "p1")],
            args.processes: [*launcher, "--multi_gpu", "--num_processes", str(args.processes),
                             "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                             *common, "--out", str(out / f"p{args.processes}")]}
    results = {}
    for n, cmd in runs.items():
        print(f"$ {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True)
        run_dir = out / f"p{n}"
        saved = json.loads((run_dir / "checkpoints" / "last" / "config.json").read_text())
        results[n] = {"samples_per_second": steady_samples_per_second(run_dir),
                      "distributed": saved.get("distributed")}
    one = results[1]["samples_per_second"]
    print(f"\n{'processes':>9s} {'global batch':>12s} {'samples/s':>10s} {'scaling':>8s} {'efficiency':>10s}")
    for n, r in results.items():
        sps = r["samples_per_second"]
        print(f"{n:9d} {n * args.batch_size:12d} {sps:10.0f} {sps / one:7.2f}x {sps / one / n:9.0%}")
    write_results(f"multi_gpu-{args.processes}", args, {"policy": args.policy, "steps": args.steps,
                                                       "batch_size_per_process": args.batch_size,
                                                       "device": args.device or "cuda", "runs": results})


if __name__ == "__main__":
    main()
