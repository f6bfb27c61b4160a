"""Training throughput of one image policy through the real training loop (data sampling,
augmentation, EMA, logging), eager and compiled, at a few batch sizes.

`speed.py` times the model step on synthetic inputs; this times what a training run gets. On
the H100 one image-ACT run got under 2 700 samples/s alone and about 2 090 with three others
beside it, so the GPU was mostly idle: is the loop or the launch overhead the limit?

    python benchmarks/image_train_speed.py [--task pick-place-v3] [--demos 10] [--steps 600]
        [--batch-sizes 128 256] [--compile] [--policy act:...]

Samples/s is the median over the loss log's intervals after the first two (compile and
warm-up excluded). Rendering needs MUJOCO_GL=egl (GPU machine) or osmesa.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _jobs import ensure_dir  # noqa: E402
from _provenance import parse_args, write_results  # noqa: E402
from _timing import steady_samples_per_second  # noqa: E402
from image_policies import OBS_KEYS, TASK_POLICIES, parse_policy  # noqa: E402


def main() -> None:
    import torch

    from vlascope.envs.collect import collect_demos
    from vlascope.train.loop import make_train_config, train

    p = argparse.ArgumentParser()
    p.add_argument("--task", default="pick-place-v3")
    p.add_argument("--policy", default=TASK_POLICIES["pick-place-v3"][-1])
    p.add_argument("--demos", type=int, default=10)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--compile", action="store_true", help="also time the compiled step")
    p.add_argument("--profile", type=int, default=0,
                   help="then profile this many steps at the first batch size (compiled when the policy says so): where a step's time goes")
    p.add_argument("--out", default="outputs/image_train_speed")
    args = parse_args(p)
    out = ensure_dir(args.out)
    data = out / f"{args.task}.hdf5"
    if not data.exists():
        collect_demos(args.task, args.demos, str(data), camera=["corner2"], progress=False)
    label, name, over, train_over = parse_policy(args.policy)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(f"{label} on {device}, {args.demos} demos of {args.task}", flush=True)
    print(f"{'batch':>6s} {'compiled':>9s} {'samples/s':>10s} {'steps/s':>8s} {'run s':>7s} {'peak GiB':>9s}", flush=True)
    rows = []
    for compiled in [False, True] if args.compile else [False]:
        for batch in args.batch_sizes:
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            cfg = make_train_config({**train_over, "steps": args.steps, "batch_size": batch,
                                     "compile": compiled, "log_every": 50, "ckpt_every": 0})
            t0 = time.time()
            run_dir = out / f"{name}-b{batch}-{'compiled' if compiled else 'eager'}"
            train([str(data)], name, str(run_dir), cfg, {"obs_keys": OBS_KEYS, **over}, progress=False)
            sps = steady_samples_per_second(run_dir)
            peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
            print(f"{batch:6d} {str(compiled):>9s} {sps:10.0f} {sps / batch:8.1f} {time.time() - t0:7.0f} "
                  f"{peak:9.2f}", flush=True)
            rows.append({"batch_size": batch, "compiled": compiled, "samples_per_s": sps,
                         "seconds": time.time() - t0, "peak_gib": None if peak != peak else peak})
    write_results("image_train_speed", args, {"policy": args.policy, "device": device, "rows": rows})
    if args.profile:
        profile_steps(str(data), name, over, train_over, args.batch_sizes[0], args.profile, out)


def profile_steps(data: str, name: str, over: dict, train_over: dict, batch: int, steps: int,
                  out: Path) -> None:
    """The loop's own profile (`profile_steps`) of `steps` training steps after a few unprofiled
    ones: its parts by CPU time (batch sampling, EMA and gradient clipping are labelled), where a
    step paced by Python queueing kernels shows CPU time well above the kernels' time, and the
    kernels by GPU time."""
    from vlascope.train.loop import make_train_config, train

    run = out / "profile"
    cfg = make_train_config({**train_over, "steps": steps + 10, "batch_size": batch, "log_every": steps,
                             "ckpt_every": 0, "warmup_steps": 1, "profile_steps": steps})
    train([data], name, str(run), cfg, {"obs_keys": OBS_KEYS, **over}, progress=False)
    print((run / "profile.txt").read_text())


if __name__ == "__main__":
    main()
