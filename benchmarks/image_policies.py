"""Image + proprio policies, closed loop: 50 diverse demos with `corner2` images per task, each
policy trained on images + hand/gripper state + the goal position, 50 evaluation episodes.

The goal is given as an input because at these image sizes reach's and pick-place's goal is a
small coloured sphere of a few pixels (benchmarks/goal_markers.py counts them), which the
policies did not learn to find, while button-press's target is the button itself. The doctor's `observability` check finds that from the data alone; `--observability`
prints what it says about the pick-place images with and without the goal.

Rendering: MUJOCO_GL=egl on the GPU machine (osmesa on a CPU is far too slow for this).

    python benchmarks/image_policies.py [--tasks ...] [--policies flow diffusion act] [--steps 10000]

Without --policies each task gets each policy's best measured recipe (TASK_POLICIES).

A policy may carry options: `diffusion:denoiser=mlp` is the diffusion head on the MLP denoiser;
`lr`, `batch_size`, `ema_decay`, `weight_decay`, `steps`, `seed`, `amp` and `compile` go to that
run's training config (`act:use_vae=false,lr=1e-4`). `--eval-at 4000` also evaluates each run's
step-4000 checkpoint; `--executions n_action_steps=1,temporal_ensemble=0.01` also evaluates each
final checkpoint with ACT's temporal ensembling (execution settings only, one evaluation per
argument). `--seeds 0 1 2 3` trains each policy once per seed and prints each recipe's success
pooled over its seeds: one training run is one draw. `--recipe NAME` runs the arguments behind a
row of the results page (RECIPES).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _jobs import (add_common_args, collect, ensure_dir, print_pooled, print_results, run_parallel,  # noqa: E402
                   train_and_eval, observability as jobs_observability)
from _provenance import parse_args, write_results  # noqa: E402
from vlascope.policies.base import check_execution_settings  # noqa: E402

TASKS = ["pick-place-v3", "button-press-v3", "reach-v3"]
# Each policy's best measured recipe per task (the results page gives their success): DDPM and
# ACT read the scene only when they must also predict the object position (aux_keys). On
# pick-place ACT keys on which demo it is in unless its hand state is noisy; on reach the same
# noise blurs the hand-to-goal offset it must read, so the noise goes only where it breaks a
# memorising shortcut. DDPM on reach does better as the plain U-Net at batch 256 than with the
# auxiliary target.
DDPM = "diffusion:aux_keys=[object_state],batch_size=128"
ACT = "act:aux_keys=[object_state],lr=1e-4,batch_size=128"
POLICIES = ["flow", f"{DDPM},steps=5000", f"{ACT},steps=5000"]
TASK_POLICIES = {"pick-place-v3": ["flow", DDPM, "act:aux_keys=[object_state],lr=1e-4,obs_noise=0.4,"
                                   "obs_noise_keys=[robot_state],dropout=0.3,weight_decay=1e-2,"
                                   "batch_size=256,compile=true,steps=6000"],
                 "reach-v3": ["flow", "diffusion:batch_size=256,compile=true,steps=10000", f"{ACT},steps=5000"]}
OBS_KEYS = ["robot_state", "goal", "corner2_image"]
# The runs behind the image rows of the results page. A recipe over several seeds trains each seed
# of one recipe and pools their episodes: one training run is one draw.
RECIPES = {
    "flow": ["--policies", "flow", "--steps", "10000", "--workers", "3"],
    "act-pick-place": ["--tasks", "pick-place-v3", "--policies", TASK_POLICIES["pick-place-v3"][2],
                       "--seeds", "0", "1", "2", "3", "--workers", "4", "--eval-workers", "2"],
    "diffusion-pick-place": ["--tasks", "pick-place-v3", "--policies", f"{DDPM},steps=10000",
                             "--seeds", "0", "1", "2", "--workers", "3", "--eval-workers", "2"],
    "diffusion-reach": ["--tasks", "reach-v3", "--policies", TASK_POLICIES["reach-v3"][1],
                        "--seeds", "0", "1", "--workers", "2", "--eval-workers", "7"],
    "button-press-reach": ["--tasks", "button-press-v3", "reach-v3", "--policies", f"{DDPM},steps=5000",
                           f"{ACT},steps=5000", "--workers", "4", "--eval-workers", "2"],
}


def observability(path: str) -> dict:
    out = jobs_observability({"path": path, "inputs": [["robot_state", "corner2_image"], OBS_KEYS]})["checks"]
    for keys, f in out.items():
        print(f"observability {keys}: {f['severity']}: {f['title']}", flush=True)
    return out


TRAIN_OPTIONS = ("lr", "batch_size", "ema_decay", "weight_decay", "steps", "seed", "amp", "compile")


def parse_options(options: str) -> dict:
    """'key=value,...' -> {key: YAML value}. Numbers YAML leaves as text (1e-4) are converted
    where the configs are built."""
    import yaml

    # Commas inside brackets belong to a list value (vision_widths=[64,128]), not between options.
    pairs = re.split(r",(?![^\[]*\])", options)
    return {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in pairs if o)}


def parse_policy(spec: str) -> tuple[str, str, dict, dict]:
    """'name[:key=value,...]' -> (label, policy name, policy overrides, training overrides)."""
    name, _, options = spec.partition(":")
    over = parse_options(options)
    train = {k: over.pop(k) for k in TRAIN_OPTIONS if k in over}
    return spec.replace(":", "-").replace(",", "-").replace("=", ""), name, over, train


def main() -> None:
    from vlascope.fileio import write_json

    p = argparse.ArgumentParser()
    p.add_argument("--tasks", nargs="+", default=TASKS)
    p.add_argument("--policies", nargs="+", default=None,
                   help="policy specs for every task (default: each task's measured best)")
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--observability", action="store_true")
    p.add_argument("--demo-states", action="store_true",
                   help="also evaluate from the demos' own initial states (memorisation check)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: TrainConfig's 1e-3)")
    p.add_argument("--eval-at", type=int, nargs="*", default=[],
                   help="earlier steps whose checkpoints are evaluated too (first task of each run)")
    p.add_argument("--executions", nargs="*", default=[],
                   help="execution settings each final checkpoint is evaluated under too "
                        "(first task), e.g. n_action_steps=1,temporal_ensemble=0.01")
    p.add_argument("--seeds", type=int, nargs="*", default=[],
                   help="training seeds: each policy is trained once per seed, and pooled")
    add_common_args(p, steps=10000, batch_size=256, out="outputs/image_policies")
    args = parse_args(p, RECIPES)
    executions = [parse_options(e) for e in args.executions]
    for execution in executions:  # before collecting and training, not after
        try:
            check_execution_settings(execution)
        except ValueError as exc:
            p.error(f"--executions: {exc}")
    out = ensure_dir(args.out)
    t0 = time.time()
    collected = run_parallel(collect, [
        {"task": t, "episodes": args.demos, "out": str(out / f"{t}.hdf5"), "camera": "corner2",
         "image_size": args.image_size} for t in args.tasks], args.workers)
    print(f"collected in {time.time() - t0:.0f}s: " + ", ".join(
        f"{c['task']} {c['kept']}/{c['attempted']}" for c in collected), flush=True)
    checks = observability(str(out / "pick-place-v3.hdf5")) if args.observability and \
        "pick-place-v3" in args.tasks else None
    jobs = []
    for t in args.tasks:
        for label, name, over, train in map(parse_policy, args.policies or TASK_POLICIES.get(t, POLICIES)):
            for seed in args.seeds or [None]:  # None: the spec's own seed option, else TrainConfig's
                run = f"{label}-seed{seed}" if seed is not None else label
                jobs.append({"name": f"{t}/{run}", "group": f"{t}/{label}", "policy": name,
                             "datasets": [str(out / f"{t}.hdf5")], "out": str(out / "runs" / f"{t}-{run}"),
                             "steps": args.steps, "eval_tasks": [t], "episodes": args.episodes,
                             "eval_workers": args.eval_workers, "demo_states": args.demo_states,
                             "eval_at": args.eval_at, "executions": executions,
                             "overrides": {"obs_keys": OBS_KEYS, **over},
                             "train": {"batch_size": args.batch_size, **({"lr": args.lr} if args.lr else {}),
                                       **train, **({} if seed is None else {"seed": seed})}})
    results = run_parallel(train_and_eval, jobs, args.workers)
    print_results(results)
    pooled = print_pooled(results)
    print(f"\ntotal wall time {time.time() - t0:.0f}s")
    result = {"collected": collected, "results": results, "pooled": pooled, "observability": checks,
              "args": vars(args)}
    write_json(out / "results.json", result)
    write_results("image_policies", args, result)


if __name__ == "__main__":
    main()
