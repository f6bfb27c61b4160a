"""Few-step sampling: is a flow head at <= 10 integration steps as good as DDPM with every one
of its 100 steps? Both heads on the same MLP denoiser and data, each evaluated closed loop at
several step counts on the same seeds, with the time per chunk (batch 1).

    python benchmarks/few_step.py [--task pick-place-v3] [--steps 8000] [--episodes 50]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _provenance import parse_args, write_results  # noqa: E402
from _timing import seconds_per_call  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="pick-place-v3")
    p.add_argument("--demos", type=int, default=50)
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--out", default="outputs/few_step")
    args = parse_args(p)

    from vlascope.envs.collect import collect_demos
    from vlascope.evaluate.runner import evaluate
    from vlascope.policies import load_pretrained
    from vlascope.train import TrainConfig, train

    out = Path(args.out)
    data = out / f"{args.task}.hdf5"
    if not data.exists():
        collect_demos(args.task, args.demos, str(data), progress=False)
    rows = []
    for head, step_counts in (("flow", [1, 2, 5, 10]), ("diffusion", [10, 100])):
        run = train([str(data)], head, out / head, TrainConfig(steps=args.steps, ckpt_every=0),
                    {"denoiser": "mlp"}, progress=False)
        policy = load_pretrained(run.last_checkpoint)
        obs = {k: torch.zeros(1, policy.config.n_obs_steps, d) for k, d in policy.config.obs_dims.items()}
        for n in step_counts:
            policy.head.inference_steps = n
            report = evaluate(policy, args.task, args.episodes, progress=False)
            s = report.summary
            rows.append({"head": head, "sampling_steps": n, "successes": s["successes"],
                         "episodes": s["episodes"], "ci95": s["success_ci95"],
                         "ms_per_chunk": 1000 * seconds_per_call(lambda: policy.predict_chunk(obs), 30), "train_loss": run.final_loss})
            r = rows[-1]
            print(f"{head:9s} {n:3d} steps: {r['successes']}/{r['episodes']} "
                  f"[{100 * r['ci95'][0]:.0f}, {100 * r['ci95'][1]:.0f}]%  {r['ms_per_chunk']:.2f} ms/chunk",
                  flush=True)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    write_results("few_step", args, {"task": args.task, "demos": args.demos, "steps": args.steps, "rows": rows})


if __name__ == "__main__":
    main()
