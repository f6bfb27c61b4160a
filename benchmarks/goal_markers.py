"""How many pixels of the `corner2` frame each MetaWorld task's goal marker covers.

MetaWorld draws some goals as small spheres (sites named "goal", "mug_goal", ...). A policy on
the published protocol sees the goal only through them, so whether a task is solvable from the
camera depends on the frame size. For each task this draws the scenes of the first evaluation
episodes, as LeRobot's MetaWorld environment views them, with the goal markers and with them
hidden, and counts the pixels that differ (`MetaWorldEnv.goal_marker_pixels`): the median over
the episodes, at each image size. 0: no marker, or the scene hides it from this camera.

    python benchmarks/goal_markers.py [--tasks mt50|TASK ...] [--image-sizes 128 224] [--episodes 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _provenance import parse_args, parse_tasks, write_results  # noqa: E402


def marker_pixels(task: str, image_size: int, episodes: int) -> int:
    import numpy as np

    from vlascope.envs import MetaWorldEnv, episode_seed

    env = MetaWorldEnv(task, camera="corner2", image_size=image_size)
    counts = []
    for i in range(episodes):
        env.reset(episode_seed(0, i, "eval"))
        counts.append(env.goal_marker_pixels())
    env.close()
    return int(np.median(counts))


def main() -> None:
    from vlascope.envs import task_names
    from vlascope.evaluate.metrics import format_table

    p = argparse.ArgumentParser()
    p.add_argument("--tasks", nargs="+", default=["mt50"], help="mt50 or task names")
    p.add_argument("--image-sizes", type=int, nargs="+", default=[128, 224])
    p.add_argument("--episodes", type=int, default=5)
    args = parse_args(p)
    tasks = parse_tasks(p, args.tasks, {"mt50": task_names()})
    rows = [{"task": t, "median_pixels": {str(s): marker_pixels(t, s, args.episodes) for s in args.image_sizes}}
            for t in tasks]
    sizes = [str(s) for s in args.image_sizes]
    print(format_table(["task", *[f"pixels at {s} px" for s in sizes]],
                       [[r["task"], *[str(r["median_pixels"][s]) for s in sizes]] for r in rows]))
    drawn = [r["task"] for r in rows if any(r["median_pixels"].values())]
    print(f"\n{len(drawn)} of {len(rows)} tasks draw a goal marker in the corner2 frame")
    write_results("goal_markers", args, {"episodes": args.episodes, "image_sizes": args.image_sizes,
                                         "tasks": rows, "drawn": drawn})


if __name__ == "__main__":
    main()
