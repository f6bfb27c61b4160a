"""How much noisier a data-parallel training step is when its processes share their random draws.

N processes each draw a batch of B/N and, in the forward pass, flow times and noise (with
images, also crops and jitter); DDP averages their gradients. Seeded alike, the N processes draw
the same times and noise for N different batches. At one set of weights (a policy trained for
--train-steps on the tasks' demos), this measures the variance of the step's gradient over
--repeats steps, for a global batch of B:

  one process         B samples with B draws of their own;
  N, own draws        N slices of B/N, each with draws of its own (what `seed_process` gives);
  N, shared draws     the same slices, one set of B/N draws for all N (one seed for every process);
  one slice           B/N samples alone: the variance a step of that size has.

No distributed run is needed: DDP's averaged gradient is the mean of the slices' gradients. The
variance is the mean squared distance of a step's gradient from the mean of every gradient
computed, which every way estimates without bias.

    python benchmarks/shared_draws.py [--tasks mt10] [--processes 2 4] [--repeats 40]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _jobs import collect, ensure_dir, run_parallel  # noqa: E402
from _provenance import parse_args, parse_tasks, write_results  # noqa: E402
from mt50 import INPUT_SETS, camera_for  # noqa: E402

from vlascope.envs.metaworld import TASK_SETS  # noqa: E402

def slices(batch: dict, parts: int) -> list[dict]:
    """`batch` cut along its first dimension into `parts` equal batches."""
    def cut(value, i: int, size: int):
        if isinstance(value, dict):
            return {k: cut(v, i, size) for k, v in value.items()}
        return value[i * size:(i + 1) * size]

    size = len(batch["action"]) // parts
    return [cut(batch, i, size) for i in range(parts)]


def gradient(policy, batches: list[dict], seeds: list[int]):
    """The mean of the gradients of `policy`'s loss on each batch, each drawn from its seed."""
    import torch

    params = [p for p in policy.parameters() if p.requires_grad]
    total = None
    for batch, seed in zip(batches, seeds):
        torch.manual_seed(seed)
        loss, _ = policy(batch)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        flat = torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)])
        total = flat if total is None else total + flat
    return total / len(batches)


def main() -> None:
    import torch

    from vlascope.policies import load_pretrained
    from vlascope.train import TrainConfig, train
    from vlascope.train.loop import BatchSource, prepare_data
    from vlascope.data import WindowDataset

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["mt10"], help="mt10, mt50 or task names")
    p.add_argument("--inputs", choices=sorted(INPUT_SETS), default="state")
    p.add_argument("--demos", type=int, default=20, help="demos a task")
    p.add_argument("--train-steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=256, help="the global batch B")
    p.add_argument("--processes", type=int, nargs="+", default=[2, 4])
    p.add_argument("--repeats", type=int, default=40, help="steps whose gradients are compared")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default="outputs/shared_draws")
    args = parse_args(p)
    if any(args.batch_size % n for n in args.processes):
        p.error(f"--processes: each must divide --batch-size {args.batch_size}")
    tasks = parse_tasks(p, args.tasks, TASK_SETS)
    out = ensure_dir(args.out)
    data = ensure_dir(out / "data")
    todo = [t for t in tasks if not (data / f"{t}.hdf5").exists()]
    run_parallel(collect, [{"task": t, "episodes": args.demos, "out": str(data / f"{t}.hdf5"),
                            "camera": camera_for(args.inputs),
                            "image_size": 128, "index": i} for i, t in enumerate(todo)], args.workers)
    paths = [str(data / f"{t}.hdf5") for t in tasks]
    run = out / f"run-{args.inputs}-{args.train_steps}"
    if not (run / "checkpoints" / "last").exists():
        train(paths, "flow", run, TrainConfig(steps=args.train_steps, batch_size=64, ckpt_every=0, device="cpu"),
              {"obs_keys": INPUT_SETS[args.inputs], "language": True}, progress=False)
    policy = load_pretrained(run / "checkpoints" / "last", weights="model", device="cpu")
    policy.train()
    config = policy.config
    _, episodes, task_indices, _ = prepare_data(paths, config.data_keys)
    tables = WindowDataset(episodes, config.data_keys, config.n_obs_steps, config.horizon, task_indices).tables()
    source = BatchSource(tables, args.batch_size, torch.device("cpu"), seed=0)

    ways = ["one process"] + [f"{n}, {w}" for n in args.processes for w in ("own draws", "shared draws", "one slice")]
    grads = {w: [] for w in ways}
    start = time.time()
    for r in range(args.repeats):
        batch = source.sample()
        seed = 1_000 * r
        grads["one process"].append(gradient(policy, [batch], [seed]))
        for n in args.processes:
            parts = slices(batch, n)
            grads[f"{n}, own draws"].append(gradient(policy, parts, [seed + 1 + i for i in range(n)]))
            grads[f"{n}, shared draws"].append(gradient(policy, parts, [seed + 1] * n))
            grads[f"{n}, one slice"].append(gradient(policy, parts[:1], [seed + 1 + n]))
    seconds = time.time() - start
    mean = torch.stack([g for w in ways for g in grads[w]]).mean(0)
    variance = {w: torch.stack([(g - mean).square().sum() for g in grads[w]]).mean().item() for w in ways}
    one = variance["one process"]
    from vlascope.evaluate.metrics import format_table

    print(format_table(["step", "gradient variance", "vs one process"],
                       [[w, f"{variance[w]:.4g}", f"{variance[w] / one:.2f}x"] for w in ways]), flush=True)
    print(f"{args.repeats} steps of {args.batch_size} on {len(tasks)} tasks' {args.inputs} inputs in {seconds:.0f}s")
    write_results(f"shared_draws-{args.inputs}", args, {
        "tasks": tasks, "variance": variance, "ratio": {w: variance[w] / one for w in ways},
        "parameters": sum(p.numel() for p in policy.parameters() if p.requires_grad), "seconds": seconds})


if __name__ == "__main__":
    main()
