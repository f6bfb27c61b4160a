"""Shared helpers for the benchmark scripts: run (train, evaluate) jobs in parallel processes."""

from __future__ import annotations

import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def summary_with_failures(report) -> dict:
    """The report's summary and, per failed episode, (length, grasped, final object-to-goal
    distance): where the failures happen (never grasped, dropped on the way, placed off)."""
    return {**report.summary, "failures": [
        (e.length, e.grasped, round(e.final_object_to_goal, 3)) for e in report.episodes if not e.success]}


def train_and_eval(job: dict) -> dict:
    """job: datasets, policy, out, steps, eval_tasks, episodes, seed, fixed_init, overrides,
    eval_workers, demo_states (also evaluate from the first dataset's own demo initial
    states: success there and not from new ones means memorised scenes), eval_at (earlier
    steps whose checkpoints are evaluated too, on the first task: does a run that memorises
    generalise earlier on?), executions (execution settings, e.g. {"n_action_steps": 1,
    "temporal_ensemble": 0.01}, that the final checkpoint is evaluated under too, on the first
    task: the same weights replanned or ensembled differently). out/result.json is rewritten
    after the training and after each evaluation, so a batch cut short (a machine taken away)
    keeps every figure measured so far; "done" says whether the job got to its end."""
    from vlascope.evaluate.runner import evaluate
    from vlascope.policies import load_pretrained
    from vlascope.devices import resolve_device
    from vlascope.fileio import write_json
    from vlascope.train.loop import make_train_config, train

    t0 = time.time()
    eval_at = job.get("eval_at") or []
    result = train(job["datasets"], job["policy"], job["out"],
                   make_train_config({"steps": job["steps"], "ckpt_every": math.gcd(*eval_at),
                                      **job.get("train", {})}),
                   job.get("overrides"), progress=False)
    evals = {}
    out = {"name": job["name"], "group": job.get("group", job["name"]),  # group: one recipe's seeds
           "train_seconds": result.seconds, "final_loss": result.final_loss,
           "samples_per_second": result.samples_per_second, "evals": evals, "done": False}

    def save() -> None:
        out["seconds"] = time.time() - t0
        write_json(Path(job["out"]) / "result.json", out)

    save()

    def measure(key: str, policy, task: str, episodes: int | None = None, **options) -> None:
        """Evaluate on the job's seeds and workers, record the figures under `key`, save."""
        report = evaluate(policy, task, episodes or job["episodes"], seed=job.get("seed", 0),
                          progress=False, workers=job.get("eval_workers", 0), **options)
        evals[key] = summary_with_failures(report)
        save()

    first_task = job["eval_tasks"][0]
    for step in eval_at:
        if step < job.get("train", {}).get("steps", job["steps"]):
            measure(f"{first_task} @{step}", load_pretrained(
                result.run_dir / "checkpoints" / f"step_{step:07d}", device=resolve_device("auto")), first_task)
    policy = load_pretrained(result.last_checkpoint, device=resolve_device("auto"))
    for task in job["eval_tasks"]:
        for fixed in job.get("fixed_init", [False]):
            measure(f"{task}{' (fixed init)' if fixed else ''}", policy, task, fixed_init=fixed)
        if job.get("demo_states"):
            from vlascope.data import read_dataset

            states = [e.attrs["initial_state"] for e in read_dataset(job["datasets"][0]).episodes]
            measure(f"{task} (demo states)", policy, task, min(job["episodes"], len(states)),
                    initial_states=states[:job["episodes"]])
    trained = policy.config
    for execution in job.get("executions") or []:
        policy.config = trained.with_execution(**execution)  # the same weights, run differently
        measure(f"{first_task} ({', '.join(f'{k}={v}' for k, v in execution.items())})", policy, first_task)
    policy.config = trained
    out["done"] = True
    save()
    return out


def collect(job: dict) -> dict:
    from vlascope.envs.collect import collect_demos, expert_success
    from vlascope.envs.metaworld import spread_rendering

    spread_rendering(job.get("index", 0))
    report = collect_demos(job["task"], job["episodes"], job["out"], seed=job.get("seed", 0),
                           fixed_init=job.get("fixed_init", False), camera=job.get("camera"),
                           image_size=job.get("image_size", 96), progress=False)
    out = {"task": job["task"], "path": job["out"], "kept": report.kept,
           "attempted": report.attempted, "seconds": report.seconds}
    if job.get("expert_episodes"):
        out["expert_eval_success"] = expert_success(job["task"], job["expert_episodes"],
                                                    seed=job.get("seed", 0))
    return out


def observability(job: dict) -> dict:
    """The doctor's observability check on one dataset (job: path, inputs: a list of input-key
    lists, each checked in turn). Per input list: severity, title and evidence."""
    from vlascope.data import read_dataset
    from vlascope.doctor import DoctorContext
    from vlascope.doctor.data_checks import check_observability

    data = read_dataset(job["path"])
    out = {}
    for keys in job["inputs"]:
        [f] = check_observability(DoctorContext(dataset=data, out_dir=Path(job["path"]).parent / "doctor",
                                                make_policy=None, inputs=keys))
        out["+".join(keys)] = {"severity": f.severity, "title": f.title, "evidence": f.evidence}
    embedding = data.attrs.get("instruction_embedding")
    return {"path": job["path"], "task": data.task, "checks": out, "instruction": data.attrs.get("instruction"),
            "instruction_embedding": None if embedding is None else [float(v) for v in embedding]}


def eval_checkpoint(job: dict) -> dict:
    """job: task, ckpt, episodes, seed. Evaluates on the GPU when there is one."""
    from vlascope.evaluate.runner import evaluate
    from vlascope.policies import load_pretrained
    from vlascope.devices import resolve_device

    policy = load_pretrained(job["ckpt"], device=resolve_device("auto"))
    report = evaluate(policy, job["task"], job["episodes"], seed=job.get("seed", 0), progress=False)
    return {"task": job["task"], "summary": report.summary, "seconds": report.seconds}


def add_common_args(parser, steps: int, batch_size: int, out: str) -> None:
    parser.add_argument("--demos", type=int, default=50, help="expert demos per task")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes per task")
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--workers", type=int, default=None, help="parallel processes")
    parser.add_argument("--eval-workers", type=int, default=0,
                        help="env worker processes per evaluation (0: in the job's process)")
    parser.add_argument("--out", default=out)


def print_results(results: list[dict], expert: dict[str, float] | None = None) -> None:
    """One row per (training run, evaluated task): success with its 95% interval, the expert's
    success on the same seeds (when given, by task), loss, speed."""
    from vlascope.evaluate.metrics import format_success, format_table

    rows = []
    for r in results:
        for name, s in r["evals"].items():
            label = r["name"] if len(r["evals"]) == 1 else f"{r['name']} {name}"
            rows.append([label, *format_success(s),
                         *([f"{100 * expert.get(name.split(' ')[0], float('nan')):.0f}%"] if expert else []),
                         f"{r['final_loss']:.4f}", f"{r['train_seconds']:.0f}", f"{r['samples_per_second']:.0f}"])
    print("\n" + format_table(["run", "success", "95% CI", *(["expert"] if expert else []), "loss", "train s",
                               "samples/s"], rows))


def print_pooled(results: list[dict]) -> dict:
    """Runs that share a group (one recipe, several training seeds), pooled per evaluation: the
    figure to judge a recipe by. Returns {group: {eval: pooled}} for the results file."""
    from vlascope.evaluate.metrics import format_pooled, pool_runs

    groups: dict[str, list[dict]] = {}
    for r in results:
        groups.setdefault(r["group"], []).append(r)
    pooled = {g: {key: pool_runs([r["evals"][key] for r in rs]) for key in rs[0]["evals"]
                  if all(key in r["evals"] for r in rs)}
              for g, rs in groups.items() if len(rs) > 1}
    if pooled:
        print("\nrecipes, pooled over their training seeds")
    for g, evals in pooled.items():
        for key, p in evals.items():
            label = g if len(evals) == 1 else f"{g} {key}"
            print(f"{label}: {format_pooled(p)}")
    return pooled


def run_parallel(fn, jobs: list[dict], workers: int | None = None, on_done=None) -> list[dict]:
    """fn over jobs in `workers` processes; results in the jobs' order. on_done(result) is called
    as each job finishes, so that a caller can keep what is done if a later job fails. A worker
    process that dies (killed for memory, or a crash in native code such as the renderer's
    driver) ends the script with one line saying how many jobs had finished."""
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    threads = max(1, (os.cpu_count() or 1) // workers)
    on_done = on_done or (lambda result: None)
    if workers == 1:
        _init_worker(threads)
        results = []
        for j in jobs:
            results.append(fn(j))
            on_done(results[-1])
        return results
    import multiprocessing as mp
    from concurrent.futures import as_completed
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                             initializer=_init_worker, initargs=(threads,)) as pool:
        futures = {pool.submit(fn, j): i for i, j in enumerate(jobs)}
        results: list = [None] * len(jobs)
        finished = 0
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                on_done(results[futures[future]])
                finished += 1
        except BrokenProcessPool:
            raise SystemExit(f"{Path(sys.argv[0]).name}: a worker process running {fn.__name__} died "
                             f"(killed by the system or crashed in native code) after {finished} of "
                             f"{len(jobs)} jobs had finished; the files they wrote stay") from None
        return results


def ensure_dir(path: str | Path) -> Path:
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p
