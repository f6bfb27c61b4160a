"""Closed-loop evaluation speed against the simulator's own limit, on the same cores.

The limit: N processes each stepping MetaWorld with its scripted expert, as fast as they go
(no policy), with episodes ending at success or the step limit as evaluation's do. Ours: `evaluate(..., workers=N)` with a trained policy: N env worker processes
with two envs each, each running a whole action segment per message, while the policy (on the
GPU when there is one) serves whichever envs are waiting in one batched call. Prints env
steps/s of both and the ratio; worker start-up is timed apart. `--compile` adds a run with the
policy compiled (CUDA graphs), after a short warm-up run that pays the compilation.

    python benchmarks/eval_speed.py [--task reach-v3] [--workers 2] [--episodes 20] [--checkpoint C] [--compile]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _provenance import parse_args, write_results  # noqa: E402

# The GPU machine's run: 15 env workers beside the GPU policy, with 8 and 16 envs a worker (more
# of each worker's time is stepping) and enough episodes that the last wave weighs little.
RECIPES = {"gpu": ["--workers", "15", "--envs-per-worker", "8", "16", "--episodes", "2000",
                   "--max-steps", "200", "--seconds", "20", "--compile"],
           "gpu-image": ["--workers", "15", "--envs-per-worker", "8", "16", "--episodes", "1000",
                         "--max-steps", "200", "--seconds", "20", "--compile", "--image-size", "128"]}


def expert_steps(job: dict) -> int:
    """Env steps one process takes in `seconds` with the scripted expert driving `envs` envs (1
    unless given) in turn, a camera rendered every step when `image_size` is set; episodes end
    as evaluation's do, at success or the step limit, so resets cost the same."""
    import numpy as np
    import torch

    from vlascope.envs import MetaWorldEnv, episode_seed, make_expert

    torch.set_num_threads(1)
    camera = "corner2" if job["image_size"] else None
    envs = [MetaWorldEnv(job["task"], camera=camera, image_size=job["image_size"] or 96,
                         max_steps=job.get("max_steps"), shadow_size=job.get("shadow_size"))
            for _ in range(job.get("envs", 1))]
    expert = make_expert(job["task"])
    episodes = 0

    def reset(env) -> None:
        nonlocal episodes
        env.reset(episode_seed(0, job["worker"] * 1000 + episodes, "eval"))
        episodes += 1

    for env in envs:
        reset(env)
    steps, end = 0, time.time() + job["seconds"]
    while time.time() < end:
        for env in envs:  # round robin, as a worker holding several envs steps them
            _, info, over = env.step(np.clip(expert.get_action(env.last_flat_obs), -1, 1))
            steps += 1
            if over or info.success:
                reset(env)
    return steps


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="reach-v3")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--max-steps", type=int, default=200)
    p.add_argument("--seconds", type=float, default=20.0, help="how long the expert runs")
    p.add_argument("--checkpoint", help="a trained policy; default: a flow policy trained here briefly")
    p.add_argument("--envs-per-worker", type=int, nargs="+", default=[2],
                   help="envs each worker holds; several values run one worker evaluation each")
    p.add_argument("--compile", action="store_true", help="also run the policy through torch.compile")
    p.add_argument("--image-size", type=int, default=0,
                   help="render corner2 at this size every step: the limit then includes rendering, "
                        "and the default policy reads the camera and the hand state")
    args = parse_args(p, RECIPES)

    import multiprocessing as mp

    def expert_limit(image_size: int) -> float:
        with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
            jobs = [{"task": args.task, "max_steps": args.max_steps, "seconds": args.seconds, "worker": w,
                     "image_size": image_size} for w in range(args.workers)]
            return sum(pool.map(expert_steps, jobs)) / args.seconds

    # With a camera, two limits: every step rendered (what collecting image demos costs), and
    # the physics alone (evaluation renders only the frames the policy reads).
    limit = expert_limit(args.image_size)
    physics_limit = expert_limit(0) if args.image_size else limit
    print(f"simulator limit: {args.workers} processes x scripted expert"
          f"{f', rendering {args.image_size} px frames every step' if args.image_size else ''} = "
          f"{limit:.0f} env steps/s" + (f"; physics alone {physics_limit:.0f}" if args.image_size else ""),
          flush=True)

    import torch

    from vlascope.evaluate.runner import evaluate
    from vlascope.policies import load_pretrained

    torch.set_num_threads(1)  # the workers have the other cores
    checkpoint = args.checkpoint
    if checkpoint is None:
        from vlascope.envs.collect import collect_demos
        from vlascope.train import TrainConfig, train

        tmp = Path(tempfile.mkdtemp())
        camera = "corner2" if args.image_size else None
        collect_demos(args.task, 10, str(tmp / "d.hdf5"), camera=camera, image_size=args.image_size or 96,
                      progress=False)
        overrides = {"obs_keys": ["robot_state", "corner2_image"]} if args.image_size else None
        checkpoint = train([str(tmp / "d.hdf5")], "flow", tmp / "run",
                           TrainConfig(steps=500, batch_size=128), overrides, progress=False).last_checkpoint
    from vlascope.devices import resolve_device

    policy = load_pretrained(checkpoint, device=resolve_device("auto"))
    runs = [(0, 1, False)] + [(args.workers, e, False) for e in args.envs_per_worker]
    runs += [(args.workers, e, True) for e in args.envs_per_worker] if args.compile else []
    rows = []
    for workers, per_worker, compile in runs:
        if compile:  # compile outside the timed run (one graph per env count)
            evaluate(policy, args.task, workers * per_worker, max_steps=20, progress=False,
                     workers=workers, envs_per_worker=per_worker, compile=True)
        # The in-process loop is the slow reference: a few episodes time it.
        episodes = args.episodes if workers else min(args.episodes, 20)
        report = evaluate(policy, args.task, episodes, max_steps=args.max_steps,
                          progress=False, workers=workers, envs_per_worker=per_worker,
                          compile=compile)
        print(f"evaluate(workers={workers}{f' x {per_worker} envs' if workers else ''}, policy on "
              f"{next(policy.parameters()).device}{', compiled' if compile else ''}): "
              f"{report.env_steps_per_second:.0f} env steps/s "
              f"({100 * report.env_steps_per_second / limit:.0f}% of the limit), "
              f"{report.summary['successes']}/{episodes} successes; "
              f"{report.setup_seconds:.1f} s to build the envs before that", flush=True)
        rows.append({"workers": workers, "envs_per_worker": per_worker, "compiled": compile,
                     "env_steps_per_s": report.env_steps_per_second,
                     "share_of_limit": report.env_steps_per_second / limit,
                     "successes": report.summary["successes"], "episodes": episodes,
                     "setup_seconds": report.setup_seconds})
    write_results("eval_speed" + (f"-image{args.image_size}" if args.image_size and not args.recipe else ""), args,
                  {"task": args.task, "image_size": args.image_size, "limit_env_steps_per_s": limit,
                   "physics_limit_env_steps_per_s": physics_limit, "rows": rows})


if __name__ == "__main__":
    main()
