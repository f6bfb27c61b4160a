"""How far MetaWorld's own reset observation is from the scene it has just placed, per task.

MetaWorld's reset moves objects and goal sites without running forward kinematics, so what it
returns, and what the renderer draws, until the first step is partly the previous episode's
placement. For each task this runs one episode's reset, then the next one's, and compares
MetaWorld's observation of the second with the same state after a forward pass (which is
what `MetaWorldEnv.reset` now returns): the largest object-state difference, and the mean and
largest absolute difference of the `corner2` frame in grey levels.

    python benchmarks/reset_frames.py [--tasks mt50|TASK ...] [--image-size 128]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _provenance import parse_args, parse_tasks, write_results  # noqa: E402


def reset_difference(task: str, image_size: int) -> dict:
    import mujoco
    import numpy as np

    from vlascope.envs import MetaWorldEnv
    from vlascope.envs.metaworld import split_observation

    env = MetaWorldEnv(task, camera="corner2", image_size=image_size)
    env.reset(1)
    flat = env.metaworld_reset(2)
    u = env.unwrapped
    stale = {**split_observation(flat), "corner2_image": env.render()}
    mujoco.mj_forward(u.model, u.data)
    fresh = {**split_observation(u._get_obs()), "corner2_image": env.render()}
    env.close()
    frame = np.abs(stale["corner2_image"].astype(np.float64) - fresh["corner2_image"])
    return {"task": task,
            "object_state": float(np.abs(stale["object_state"] - fresh["object_state"]).max()),
            "robot_state": float(np.abs(stale["robot_state"] - fresh["robot_state"]).max()),
            "frame_mean": float(frame.mean()), "frame_max": float(frame.max())}


def main() -> None:
    from vlascope.envs import task_names
    from vlascope.evaluate.metrics import format_table

    p = argparse.ArgumentParser()
    p.add_argument("--tasks", nargs="+", default=["mt50"], help="mt50 or task names")
    p.add_argument("--image-size", type=int, default=128)
    args = parse_args(p)
    tasks = parse_tasks(p, args.tasks, {"mt50": task_names()})
    rows = [reset_difference(t, args.image_size) for t in tasks]
    print(format_table(["task", "object state", "hand state", "frame mean", "frame max"],
                       [[r["task"], f"{r['object_state']:.4f}", f"{r['robot_state']:.5f}",
                         f"{r['frame_mean']:.2f}", f"{r['frame_max']:.0f}"] for r in rows]))
    stale = [r["task"] for r in rows if r["object_state"] > 0 or r["robot_state"] > 0 or r["frame_max"] > 0]
    print(f"\n{len(stale)} of {len(rows)} tasks: MetaWorld's reset observation differs from the "
          f"placed scene: {', '.join(stale)}")
    write_results("reset_frames", args, {"image_size": args.image_size, "tasks": rows, "stale": stale})


if __name__ == "__main__":
    main()
