"""MetaWorld MT50 on the protocol published results use (SmolVLA, arXiv 2506.01844, Table 2): one
policy over the 50 tasks, 50 scripted demos per task, inputs the `corner2` camera (as LeRobot's
MetaWorld environment renders it), the 4-dim hand/gripper state and the task's instruction (no
goal, no object state), 10 evaluation episodes per task, success per difficulty split (easy 28,
medium 11, hard 6, very hard 5 tasks). `--episodes 10 50` also runs 50 episodes a task for tight
intervals. `--tasks mt10` runs MetaWorld's MT10 instead. The `observe` stage runs the doctor's
observability check on every task's dataset with the protocol's inputs: it names the tasks whose
demos depend on something those inputs do not show (a goal too small to see, or not rendered).

Every stage resumes an interrupted run: collection skips tasks whose dataset is complete,
training continues the run from its newest checkpoint (`vlascope train --resume`; a run started
with other options is refused, not continued), evaluation skips episode counts already written
for the same checkpoint, observation skips tasks already checked; out/stages.json
keeps each run's collection and training figures for the results JSON. `--gpus N` trains through
`accelerate launch` on N GPUs (each process draws its own batches of `--batch-size`). The
`scaling` stage (not run unless named) times short training runs of the same recipe at each
`--scaling-runs` entry (a number of GPUs, optionally with train options) and profiles them; the
finished runs are kept in out/scaling.json. `--demos-from RUN` trains on the demos the run in
RUN collected (linked, with its collection record) instead of collecting them again;
`--checkpoint C --stages eval` evaluates a policy trained before (C, a vlascope checkpoint).

The `diagnose` stage (not run unless named) runs `vlascope doctor` on the trained policy with one
task's demos and episodes at a time (`--diagnose-tasks`, else the three least solved); each
report stays in out/doctor/TASK, and the results JSON keeps every finding that is not a pass.
The `agreement` stage (not run unless named) runs those tasks' episodes again, with the same seeds,
in a pool of every task (as the eval stage does), in a pool of their own, and one after another
in this process, compiled and eager (as the doctor does): where the evaluator's figures and the
doctor's closed-loop figures differ, it shows which part of the evaluator makes the difference.

`--inputs state` puts the objects' recorded state in place of the camera: off the protocol, a
reference for what a task's failure owes to perception (`--recipe cpu-state-scene-pairs`).

    python benchmarks/mt50.py --recipe NAME          (RECIPES below; --help lists their names)
    python benchmarks/mt50.py --recipe gpu-seed1 --demos-from outputs/mt50 --out outputs/mt50-seed1 \
                              --stages train eval      (another training on demos already collected)
    python benchmarks/mt50.py [--tasks mt50|mt10|TASK ...] [--image-size 128] [--steps 20000]
                              [--gpus 1] [--episodes 10 50] [--stages collect observe train eval]
    python benchmarks/mt50.py --recipe gpu --stages eval diagnose agreement [--diagnose-tasks TASK ...]
    python benchmarks/mt50.py --recipe gpu --stages collect scaling --scaling-runs 1 2 4 \
                              4:ddp_split_graph=true [--scaling-steps 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _jobs import collect, ensure_dir, observability, run_parallel  # noqa: E402
from _provenance import parse_args, parse_tasks, write_results  # noqa: E402
from image_policies import parse_options  # noqa: E402

from vlascope.envs.metaworld import DIFFICULTY_SPLITS, TASK_SETS as METAWORLD_SETS, difficulty_of  # noqa: E402

# scene-pairs: five pairs of tasks that share a scene and whose instructions the sentence encoder
# puts close together: only the instruction says which of the pair is asked.
TASK_SETS = {**METAWORLD_SETS,
             "scene-pairs": ["faucet-open-v3", "faucet-close-v3", "handle-press-v3", "handle-pull-v3",
                             "handle-press-side-v3", "handle-pull-side-v3", "door-lock-v3", "door-unlock-v3",
                             "window-open-v3", "window-close-v3"]}
# Average success (%) over MT50 as published, on this protocol.
PUBLISHED = {
    "Diffusion Policy (SmolVLA Table 2)": 10.5,
    "TinyVLA (SmolVLA Table 2)": 31.6,
    "pi0 3.5B (SmolVLA Table 2)": 47.9,
    "pi0 3.5B, Paligemma init (SmolVLA Table 2)": 50.5,
    "SmolVLA 0.45B": 57.3,
    "SmolVLA 2.25B": 68.24,
    "Evo-1 0.77B (arXiv 2511.04555)": 80.6,
}
# What the policy reads besides the instruction (language: true). "protocol": the published
# inputs. "state": the objects' recorded state in place of the camera (no goal), off the
# protocol: a reference that separates what a task's failure owes to perception from what it
# owes to the instruction or the demos; its rows are labelled and kept apart.
INPUT_SETS = {"protocol": ["robot_state", "corner2_image"], "state": ["robot_state", "object_state"]}


def camera_for(inputs: str) -> str | None:
    """The camera the demos of an input set are collected with (None: no frames)."""
    return "corner2" if "corner2_image" in INPUT_SETS[inputs] else None


# One 16-core GPU host: 14 collectors, a compiled flow policy on 128 px frames whose training
# step replays as CUDA graphs (compiled alone, a step waits on the host launching its kernels),
# 10 and 50 episodes a task. gpu-long trains 2.5 times as long and still fits collection,
# training and both evaluations in half an hour on one H100; gpu-30k takes 1.5 times the steps,
# and gpu-30k-stride16 (the image trunk's last stage dropped: an 8x8 map at 128 px for the
# keypoints, not 4x4) too, with 10 episodes a task.
_GPU = ["--image-size", "128", "--batch-size", "256", "--compile", "--workers", "14",
        "--eval-workers", "15", "--envs-per-worker", "8", "--episodes", "10", "50",
        "--train-options", "compile_mode=reduce-overhead"]
# Several GPUs of one host: as many samples as `gpu` (N GPUs, 20 000 / N steps of N x 256), and
# on four GPUs the throughput runs at 1, 2 and 4 GPUs, each DDP graph choice, first.
# gpu-2gpus-graphs: throughput alone at 1 and 2 GPUs, without CUDA graphs and with;
# gpu-2gpus-buckets: two GPUs with each gradient bucket averaged once, gradients as its views.
# gpu-film and gpu-film-wide: FiLM-conditioned image trunks and centred instructions, the second
# with a wider encoder and head (10 episodes a task).
# gpu-4gpus-graphs: throughput at 1, 2 and 4 GPUs with CUDA graphs and per-bucket averaging, then
# a four-GPU training with twice the samples of `gpu` (10 000 steps of 4 x 256), which gives it
# half, not a fourth (gpu-4gpus, 5 000 steps), of the one-GPU optimiser steps.
_GRAPHS_DDP = "compile_mode=reduce-overhead,ddp_average_per_bucket=true,ddp_gradient_as_bucket_view=true"
_FILM = "language_norm=true,task_film=true,task_embed_dim=64"
RECIPES = {"gpu": [*_GPU, "--steps", "20000"], "gpu-long": [*_GPU, "--steps", "50000", "--ckpt-every", "5000"],
           "gpu-30k": [*_GPU, "--steps", "30000"],
           "gpu-30k-stride16": [*_GPU, "--steps", "30000", "--episodes", "10", "--policy-options",
                                "vision_widths=[64,128,256],vision_keypoints=64"],
           # The objects' recorded state as a training-only target (aux_keys): a read-out of what the
           # head reads must predict it, so the encoder has to find the objects in the frame. The
           # inputs stay the protocol's; the target is not something the published rows had.
           "gpu-aux": [*_GPU, "--steps", "20000", "--episodes", "10", "--policy-options",
                       "aux_keys=[object_state]"],
           # The goal as that target, with the objects' state: the doctor's policy-observability
           # finds the 20 000-step policy's head blind to reach's goal marker, which the frames hold;
           # the same steps as `gpu`, so that the two differ in the target alone.
           "gpu-aux-goal": [*_GPU, "--steps", "20000", "--policy-options", "aux_keys=[goal,object_state]"],
           # 224 px frames (the published policies see frames larger than 128 px), alone and with
           # the objects' state as a training-only target.
           "gpu-224": [*_GPU, "--image-size", "224", "--steps", "20000", "--episodes", "10"],
           "gpu-224-aux": [*_GPU, "--image-size", "224", "--steps", "20000", "--episodes", "10",
                           "--policy-options", "aux_keys=[object_state]"],
           # The trained policy replanned every 4 steps, and every step with ensembling, besides every 8.
           "gpu-executions": [*_GPU, "--steps", "20000", "--episodes", "10", "--executions",
                              "n_action_steps=4", "n_action_steps=1,temporal_ensemble=0.01"],
           "gpu-film": [*_GPU, "--steps", "20000", "--episodes", "10", "--policy-options", _FILM],
           "gpu-film-wide": [*_GPU, "--steps", "20000", "--episodes", "10", "--policy-options",
                             _FILM + ",vision_keypoints=64,vision_features=128,encoder_hidden=512,"
                                     "cond_dim=512,mlp_width=512"],
           "gpu-2gpus": [*_GPU, "--gpus", "2", "--workers", "28", "--steps", "10000", "--episodes", "10"],
           # Two GPUs with 1.5 times the samples of `gpu` (three quarters of its optimiser steps):
           # half the steps at the same learning rate ends below the one-GPU policy.
           "gpu-2gpus-15k": [*_GPU, "--gpus", "2", "--workers", "28", "--steps", "15000"],
           # Two GPUs with the samples of `gpu` in half its steps, the learning rate scaled by the
           # square root of the global batch's growth (the rule Malladi et al. 2022 derive for Adam).
           "gpu-2gpus-lr": [*_GPU, "--gpus", "2", "--workers", "28", "--steps", "10000",
                            "--train-options", "compile_mode=reduce-overhead,lr=0.0014142"],
           # Four GPUs the same way: the samples of `gpu` in a fourth of its steps, the rate doubled.
           "gpu-4gpus-lr": [*_GPU, "--gpus", "4", "--workers", "56", "--steps", "5000",
                            "--train-options", _GRAPHS_DDP + ",lr=0.002"],
           # Four GPUs with 1.5 times the samples of `gpu`, as gpu-2gpus-15k has on two.
           "gpu-4gpus-7500": [*_GPU, "--gpus", "4", "--workers", "56", "--steps", "7500",
                              "--stages", "collect", "train", "eval", "--train-options", _GRAPHS_DDP],
           # Four GPUs with the optimisation of `gpu` unchanged: its global batch of 256 split into 64
           # a process, its steps and its rate. Only which device computes which sample changes.
           "gpu-4gpus-b64": [*_GPU, "--gpus", "4", "--workers", "56", "--batch-size", "64", "--steps", "20000",
                             "--stages", "collect", "train", "eval", "--train-options", _GRAPHS_DDP],
           # `gpu` and `gpu-2gpus` trained again from other initial weights and batch orders: how far
           # two trainings of one recipe land apart, beside the episodes' interval of each.
           "gpu-seed1": [*_GPU, "--steps", "20000", "--train-options", "compile_mode=reduce-overhead,seed=1"],
           "gpu-seed2": [*_GPU, "--steps", "20000", "--train-options", "compile_mode=reduce-overhead,seed=2"],
           "gpu-2gpus-seed1": [*_GPU, "--gpus", "2", "--workers", "28", "--steps", "10000",
                               "--train-options", "compile_mode=reduce-overhead,seed=1"],
           "gpu-2gpus-graphs": [*_GPU, "--gpus", "2", "--workers", "28", "--stages", "collect", "scaling",
                                "--scaling-runs", "1:compile_mode=default", "1", "2:compile_mode=default", "2",
                                "--scaling-steps", "1000"],
           "gpu-2gpus-buckets": [*_GPU, "--gpus", "2", "--workers", "28", "--stages", "collect", "scaling",
                                 "--scaling-runs", "1", "2",
                                 "2:ddp_average_per_bucket=true,ddp_gradient_as_bucket_view=true",
                                 "--scaling-steps", "1000"],
           # The objects' state in place of the camera, on the CPU: MT50, and the scene pairs.
           "cpu-state": ["--inputs", "state", "--steps", "15000", "--batch-size", "256", "--episodes", "10",
                         "--workers", "2", "--eval-workers", "2", "--stages", "collect", "train", "eval"],
           "cpu-state-scene-pairs": ["--tasks", "scene-pairs", "--inputs", "state", "--steps", "8000",
                                     "--batch-size", "256", "--episodes", "30", "--workers", "2",
                                     "--eval-workers", "2", "--stages", "collect", "train", "eval"],
           "gpu-4gpus-graphs": [*_GPU, "--gpus", "4", "--workers", "56", "--steps", "10000", "--episodes", "10",
                                "--stages", "collect", "scaling", "train", "eval", "--scaling-runs", "1", "2", "4",
                                "--scaling-steps", "1000", "--train-options", _GRAPHS_DDP],
           "gpu-4gpus": [*_GPU, "--gpus", "4", "--workers", "56", "--steps", "5000", "--episodes", "10",
                         "--stages", "collect", "scaling", "train", "eval", "--scaling-runs", "1", "4",
                         "4:ddp_split_graph=true", "2", "2:ddp_split_graph=true", "--scaling-steps", "1000"]}


def recorded_stages(out: Path) -> dict:
    """Every run's records of each stage, from out/stages.json: the results JSON of a resumed run
    (or of one that only evaluates) still tells how the data was collected and the policy trained."""
    path = out / "stages.json"
    return json.loads(path.read_text()) if path.exists() else {}


def record_stage(out: Path, stage: str, record: dict) -> None:
    """Append this run's record of a stage to out/stages.json."""
    stages = recorded_stages(out)
    stages.setdefault(stage, []).append(record)
    (out / "stages.json").write_text(json.dumps(stages, indent=2))


def demo_mismatch(records: list[dict], args, where: Path) -> str | None:
    """How the collections recorded at `where` differ from the demos this run expects (image
    size, demos a task, camera), or None. Records from before the camera was kept are judged on
    the rest."""
    expected = {"image_size": args.image_size, "demos_per_task": args.demos,
                "camera": camera_for(args.inputs)}
    for record in records:
        for key, value in expected.items():
            if key in record and record[key] != value:
                return f"{where}: collect {key} is {record[key]!r}, this run expects {value!r}"
    return None


def collect_stage(args, tasks: list[str], out: Path) -> None:
    """Collect each task's demos that out/data lacks. Demos already there that were collected
    otherwise than this run asks (stages.json says how) are refused, not trained on."""
    mismatch = demo_mismatch(recorded_stages(out).get("collect", []), args, out / "stages.json")
    if mismatch:
        raise SystemExit(f"mt50.py: {mismatch}: give another --out")
    data = ensure_dir(out / "data")
    todo = [t for t in tasks if not (data / f"{t}.hdf5").exists()]
    start = time.time()
    if todo:
        log = out / "collection.json"

        def keep(done: dict) -> None:  # each task's record as it lands: a rerun collects the rest
            previous = json.loads(log.read_text()) if log.exists() else {}
            log.write_text(json.dumps({**previous, done["task"]: done}, indent=2))

        run_parallel(collect, [{"task": t, "episodes": args.demos, "out": str(data / f"{t}.hdf5"),
                                "camera": camera_for(args.inputs),
                                "image_size": args.image_size, "index": i}
                               for i, t in enumerate(todo)], args.workers, on_done=keep)
    seconds = time.time() - start
    print(f"collected {len(todo)} of {len(tasks)} tasks in {seconds:.0f}s "
          f"({len(tasks) - len(todo)} already there)", flush=True)
    if todo:
        record_stage(out, "collect", {"seconds": seconds, "tasks": len(todo), "workers": args.workers,
                                      "demos_per_task": args.demos, "image_size": args.image_size,
                                      "camera": camera_for(args.inputs)})


def adopt_demos(parser: argparse.ArgumentParser, source: Path, args, tasks: list[str], out: Path) -> None:
    """Train and evaluate on the demos another run collected: out/data links to source/data, and
    that run's collection record joins out/stages.json, so this run's results JSON says how its
    demos were collected. Demos of another image size, count or camera are refused."""
    missing = [t for t in tasks if not (source / "data" / f"{t}.hdf5").exists()]
    if missing:
        parser.error(f"--demos-from {source}: no demos of {', '.join(missing)} in {source / 'data'}")
    records = recorded_stages(source).get("collect", [])
    mismatch = demo_mismatch(records, args, source / "stages.json")
    if mismatch:
        parser.error(f"--demos-from {mismatch}")
    data = out / "data"
    if data.is_symlink() and data.resolve() == (source / "data").resolve():
        return
    if data.exists() or data.is_symlink():
        parser.error(f"--demos-from {source}: {data} already exists; give another --out")
    data.symlink_to((source / "data").resolve(), target_is_directory=True)
    if not records:
        print(f"{source / 'stages.json'} records no collection: this run's results JSON will not "
              f"say how its demos were collected", flush=True)
    for record in records:
        record_stage(out, "collect", {**record, "run": str(source.resolve())})


def training_config(args, steps: int, train_options: str = "") -> dict:
    """The `vlascope train --config` of a run: the recipe's policy and training options."""
    return {"policy": {"obs_keys": INPUT_SETS[args.inputs], "language": True,
                       **parse_options(args.policy_options)},
            "train": {"steps": steps, "batch_size": args.batch_size, "ckpt_every": args.ckpt_every,
                      "compile": args.compile, **parse_options(args.train_options),
                      **parse_options(train_options)}}


def check_resumable(args, run: Path) -> None:
    """A run folder holds one training. Resuming it under other options (another recipe, batch,
    rate or GPU count) would continue the old training as if it were the new one, so that is
    refused in one line; more steps (a longer training of the same recipe) are a resume."""
    import yaml

    started = run.parent / f"{run.name}.yaml"
    if not started.exists() or not any((run / "checkpoints").glob("step_*")):
        return
    before, now = json.loads(started.read_text()), json.loads(json.dumps(training_config(args, args.steps)))
    differences = [f"{part}.{key} {before[part][key]!r} (asked {value!r})" if key in before[part]
                   else f"{part}.{key} unset (asked {value!r})"
                   for part in ("policy", "train") for key, value in now[part].items()
                   if key != "steps" and before[part].get(key) != value]
    differences += [f"policy.{key} {value!r} (asked none)" for key, value in before["policy"].items()
                    if key not in now["policy"]]
    differences += [f"train.{key} {value!r} (asked none)" for key, value in before["train"].items()
                    if key != "steps" and key not in now["train"]]
    saved = run / "config.yaml"
    gpus = (yaml.safe_load(saved.read_text()) or {}).get("distributed", {}).get("world_size", 1) \
        if saved.exists() else args.gpus
    if gpus != args.gpus:
        differences.append(f"{gpus} GPU{'s' if gpus != 1 else ''} (asked {args.gpus})")
    if differences:
        raise SystemExit(f"mt50.py: {started} started a training with {'; '.join(differences)}: "
                         f"give another --out, with --demos-from {run.parent} to use its demos")


def train_command(args, tasks: list[str], out: Path, run: Path, steps: int, gpus: int,
                  train_options: str = "") -> list[str]:
    """The `vlascope train` command line of a run in `run`: a resume where it has a checkpoint,
    launched through `accelerate launch` on `gpus` GPUs when more than one."""
    if (run / "checkpoints").exists() and any((run / "checkpoints").glob("step_*")):
        common = ["-m", "vlascope", "train", "--resume", str(run), "--steps", str(steps)]
    else:
        run.mkdir(parents=True, exist_ok=True)
        config = run.parent / f"{run.name}.yaml"
        config.write_text(json.dumps(training_config(args, steps, train_options)))
        common = ["-m", "vlascope", "train", "--policy", args.policy, "--out", str(run),
                  "--config", str(config)]
        for t in tasks:
            common += ["--dataset", str(out / "data" / f"{t}.hdf5")]
    if gpus > 1:
        return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                "--num_processes", str(gpus), "--num_machines", "1", "--mixed_precision", "no",
                "--dynamo_backend", "no", *common]
    return [sys.executable, *common]


def run_training(cmd: list[str]) -> None:
    print("$ " + " ".join(cmd), flush=True)
    # tqdm reads TQDM_* from the environment: a progress line every half minute in the log.
    subprocess.run(cmd, check=True, env={**os.environ, "TQDM_MININTERVAL": "30"})


def train_stage(args, tasks: list[str], out: Path) -> None:
    from _timing import steady_samples_per_second

    from vlascope.train.checkpoint import latest_checkpoint

    check_resumable(args, out / "run")
    start = time.time()
    run_training(train_command(args, tasks, out, out / "run", args.steps, args.gpus))
    # What the processes did (their own draws or shared ones, whether their weights agreed) is
    # recorded at the last step in the checkpoint's config, not in the run's config.yaml, which is
    # written as training starts.
    trained = json.loads((latest_checkpoint(out / "run") / "config.json").read_text()).get("distributed", {})
    # Trainings on several GPUs before each process drew its own noise record no `draws`.
    processes = {"draws": trained.get("draws", "shared"),
                 "replicas_in_sync": trained.get("replicas_in_sync")} if args.gpus > 1 else {}
    record_stage(out, "train", {"seconds": time.time() - start, "gpus": args.gpus, "steps": args.steps,
                                **processes, "batch_size_per_process": args.batch_size,
                                "samples_per_second": steady_samples_per_second(out / "run")})


def scaling_stage(args, tasks: list[str], out: Path) -> dict:
    """Training throughput of this policy on these data: each of `--scaling-runs` ("GPUS" or
    "GPUS:train options", e.g. 2:ddp_split_graph=true) is a short run of the same recipe;
    samples/s are read from its loss log past compilation, and process 0 profiles its last steps
    (profile.txt). Each process draws batches of `--batch-size`, so N GPUs take N times the
    samples per step. Resumes: finished runs of these steps and batch are read back, not rerun."""
    from _timing import steady_samples_per_second

    from vlascope.evaluate.metrics import format_table

    path = out / "scaling.json"
    found = json.loads(path.read_text()) if path.exists() else {}
    for spec in args.scaling_runs:
        gpus, _, options = spec.partition(":")
        name = f"{gpus}gpu" + ("-" + re.sub(r"[^A-Za-z0-9_.]+", "-", options) if options else "")
        done = found.get(name, {})
        if (done.get("steps"), done.get("batch_size_per_process")) == (args.scaling_steps, args.batch_size):
            continue  # timed already; a run of other steps or batch is timed again
        run = out / "scaling" / name
        shutil.rmtree(run, ignore_errors=True)  # an interrupted short run starts again
        start = time.time()
        run_training(train_command(args, tasks, out, run, args.scaling_steps, int(gpus),
                                   f"ckpt_every=0,profile_steps=20,{options}"))
        found[name] = {"gpus": int(gpus), "train_options": options, "steps": args.scaling_steps,
                       "batch_size_per_process": args.batch_size,
                       "samples_per_second": steady_samples_per_second(run),
                       "seconds": time.time() - start,
                       "profile": (run / "profile.txt").read_text().splitlines()[0]}
        path.write_text(json.dumps(found, indent=2))
    one = next((r["samples_per_second"] for r in found.values() if r["gpus"] == 1), None)
    rows = [[name, str(r["gpus"]), f"{r['samples_per_second']:.0f}",
             f"{r['samples_per_second'] / one:.2f}x" if one else "",
             f"{r['samples_per_second'] / one / r['gpus']:.0%}" if one else "", r["profile"]]
            for name, r in found.items()]
    print("\n" + format_table(["run", "GPUs", "samples/s", "vs 1 GPU", "efficiency", "profile"], rows),
          flush=True)
    return found


def observe_stage(args, tasks: list[str], out: Path) -> dict:
    """The doctor's observability check on each task's dataset with the protocol's inputs: where
    the goal (or anything else the demos depend on) is not visible in them, the task is flagged
    with the recorded key that would close the gap. Resumes: tasks already checked are kept."""
    path = out / "observability.json"
    found = json.loads(path.read_text()) if path.exists() else {}
    inputs = INPUT_SETS[args.inputs]
    todo = [t for t in tasks if t not in found]
    if todo:
        for r in run_parallel(observability, [{"path": str(out / "data" / f"{t}.hdf5"), "inputs": [inputs]}
                                              for t in todo], args.workers):
            found[r["task"]] = {**r["checks"]["+".join(inputs)], "instruction": r["instruction"],
                                "instruction_embedding": r["instruction_embedding"]}
        path.write_text(json.dumps(found, indent=2))
    twins = instruction_twins({t: found[t].get("instruction_embedding") for t in tasks})
    from vlascope.evaluate.metrics import format_table

    rows = []
    for t in tasks:
        f = found[t]
        ev = f["evidence"]
        refs = ev.get("references", {})
        goal = refs.get("inputs + goal")
        rows.append([t, difficulty_of(t), f["severity"], f"{100 * ev.get('unexplained_share', float('nan')):.0f}%",
                     "" if goal is None else f"{100 * goal:.0f}%", ev.get("missing_input") or "",
                     ", ".join(twins.get(t, []))])
    print("\n" + format_table(["task", "split", "observability", "unexplained (inputs)",
                               "with the goal", "missing input", "same instruction as"], rows), flush=True)
    flagged = [t for t in tasks if found[t]["severity"] == "error"]
    print(f"{len(flagged)} of {len(tasks)} tasks: the inputs leave where the demos go unexplained", flush=True)
    if twins:
        print(f"{len(twins)} tasks share their instruction with another: only the camera tells them apart",
              flush=True)
    return {t: {**{k: v for k, v in found[t].items() if k != "instruction_embedding"},
                "same_instruction_as": twins.get(t, [])} for t in tasks}


def instruction_twins(embeddings: dict) -> dict[str, list[str]]:
    """Tasks whose instruction embeddings are (about) the same: a language-conditioned policy
    gets one condition for both, whatever they ask."""
    import numpy as np

    named = {t: np.asarray(e, dtype=np.float64) for t, e in embeddings.items() if e is not None}
    twins: dict[str, list[str]] = {}
    for a, x in named.items():
        for b, y in named.items():
            if a != b and x @ y >= 0.99 * np.linalg.norm(x) * np.linalg.norm(y):
                twins.setdefault(a, []).append(b)
    return twins


def last_checkpoint(args, out: Path) -> Path:
    """The policy the eval, diagnose and agreement stages examine: --checkpoint, else the one
    this run trained."""
    return args.checkpoint or out / "run" / "checkpoints" / "last"


def examined_policy(args, out: Path) -> dict:
    """What names the policy the eval, diagnose and agreement stages examine, in their records: a
    record of another policy (this run trained further, another --checkpoint) is not reused."""
    checkpoint = last_checkpoint(args, out)
    step = json.loads((checkpoint / "config.json").read_text()).get("step")
    return {"checkpoint": str(checkpoint.resolve()), "step": step}


def record_of(path: Path, policy: dict) -> dict | None:
    """The record at `path` if it was written for `policy`, else None (a stale one is redone)."""
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    return record if record.get("policy") == policy else None


def trained_policy(args, out: Path):
    from vlascope.devices import resolve_device
    from vlascope.policies import load_pretrained

    return load_pretrained(last_checkpoint(args, out), device=resolve_device("auto"))


def eval_stage(args, tasks: list[str], out: Path) -> dict:
    from vlascope.evaluate.runner import evaluate_tasks

    policy = trained_policy(args, out)
    trained = policy.config
    examined = examined_policy(args, out)
    results = {}
    # The trained execution at every episode count; each of --executions (the same weights
    # replanned or ensembled differently) at the first.
    runs = [(episodes, "") for episodes in args.episodes] + [(args.episodes[0], e) for e in args.executions]
    for episodes, execution in runs:
        key = f"{episodes}" + (f" ({execution})" if execution else "")
        suffix = "-" + re.sub(r"[^A-Za-z0-9_.=]+", "-", execution) if execution else ""
        path = out / f"eval-{episodes}{suffix}.json"
        if (record := record_of(path, examined)) is not None:
            results[key] = record
            continue
        try:
            policy.config = trained.with_execution(**parse_options(execution)) if execution else trained
        except ValueError as exc:  # a value the trained policy cannot run with (past its horizon)
            raise SystemExit(f"mt50.py: --executions {execution!r}: {exc}") from None
        reports = evaluate_tasks(policy, tasks, episodes, seed=args.seed, workers=args.eval_workers,
                                 envs_per_worker=args.envs_per_worker, compile=args.compile,
                                 progress=False)
        any_report = next(iter(reports.values()))
        results[key] = {
            "seconds": any_report.seconds, "setup_seconds": any_report.setup_seconds,
            "env_steps_per_second": any_report.env_steps_per_second, "execution": execution or "as trained",
            "policy": examined, "tasks": {t: r.summary for t, r in reports.items()}}
        path.write_text(json.dumps(results[key], indent=2))
        print(f"evaluated {key} episodes x {len(tasks)} tasks in {any_report.seconds:.0f}s "
              f"({any_report.env_steps_per_second:.0f} env steps/s, {any_report.setup_seconds:.0f}s "
              "to start the envs)", flush=True)
    return results


def least_solved(evals: dict | None, count: int, stage: str) -> list[str]:
    """The `count` tasks the first evaluation solved least often."""
    first = next(iter((evals or {}).values()), None)
    if first is None:
        raise SystemExit(f"mt50.py: the {stage} stage needs --diagnose-tasks or the eval stage's results")
    return sorted(first["tasks"], key=lambda t: first["tasks"][t]["success_rate"])[:count]


def diagnose_stage(args, tasks: list[str], out: Path, evals: dict | None) -> dict:
    """`vlascope doctor` on the trained policy with each chosen task's demos and closed-loop
    episodes of that task: --diagnose-tasks, else the three tasks the policy solves least often
    in the first evaluation. Resumes: a task whose report exists is read, not run again. Returns
    each task's findings, passed checks included; prints the others."""
    chosen = args.diagnose_tasks or least_solved(evals, 3, "diagnose")
    checkpoint = last_checkpoint(args, out)
    examined = examined_policy(args, out)
    found = {}
    for task in chosen:
        report = out / "doctor" / task
        if record_of(report / "policy.json", examined) is None or not (report / "findings.json").exists():
            (report / "findings.json").unlink(missing_ok=True)
            start = time.time()
            subprocess.run([sys.executable, "-m", "vlascope", "doctor", "--dataset", str(out / "data" / f"{task}.hdf5"),
                            "--checkpoint", str(checkpoint), "--task", task, "--out", str(report),
                            "--episodes", str(args.diagnose_episodes), "--seed", str(args.seed)], check=False)
            print(f"diagnosed {task} in {time.time() - start:.0f}s: {report / 'report.html'}", flush=True)
            if (report / "findings.json").exists():
                (report / "policy.json").write_text(json.dumps({"policy": examined}))
        if not (report / "findings.json").exists():
            raise SystemExit(f"mt50.py: the doctor wrote no report for {task} (its output is above)")
        findings = json.loads((report / "findings.json").read_text())
        found[task] = [{k: f[k] for k in ("severity", "id", "title")} for f in findings]
    from vlascope.evaluate.metrics import format_table

    print("\n" + format_table(["task", "severity", "check", "finding"],
                              [[t, f["severity"], f["id"], f["title"][:140]] for t in found for f in found[t]
                               if f["severity"] != "ok"]), flush=True)
    return found


# How the agreement stage runs each chosen task's episodes: where, beside every task of the run or
# alone, and compiled (None: as the eval stage was, by --compile). The first is the eval stage's
# way; the last is the doctor's closed-loop checks' way.
AGREEMENT_SETTINGS = {"pool of every task": ("pool", True, None), "pool of this task": ("pool", False, None),
                      "in process, compiled": ("in process", False, True),
                      "in process, eager": ("in process", False, False)}


def agreement_stage(args, tasks: list[str], out: Path, evals: dict | None) -> dict:
    """The chosen tasks' episodes (--diagnose-tasks, else the three least solved) run again with the
    same seeds and policy, each way of AGREEMENT_SETTINGS: in the pool beside every other task (as
    the eval stage runs them), in a pool of their own, and one episode after another in this
    process, compiled and eager (as the doctor's closed-loop checks run them). Success that moves
    between two settings by more than the seeds explain names the part of the evaluator at fault.
    Resumes from out/agreement.json."""
    from vlascope.evaluate.metrics import format_table
    from vlascope.evaluate.runner import evaluate_tasks

    chosen = args.diagnose_tasks or least_solved(evals, 3, "agreement")
    episodes = args.episodes[0]
    path = out / "agreement.json"
    examined = examined_policy(args, out)
    found = record_of(path, examined) or {"policy": examined}
    policy = None
    for name, (where, together, compiled) in AGREEMENT_SETTINGS.items():
        if name in found or (compiled and not args.compile):
            continue
        policy = policy or trained_policy(args, out)

        def run(group: list[str]) -> dict:
            return evaluate_tasks(policy, group, episodes, seed=args.seed,
                                  workers=args.eval_workers if where == "pool" else 0,
                                  envs_per_worker=args.envs_per_worker,
                                  compile=args.compile if compiled is None else compiled, progress=False)

        start = time.time()
        reports = run(tasks) if together else {t: run([t])[t] for t in chosen}
        found[name] = {"seconds": time.time() - start, "tasks": {
            t: {"successes": reports[t].summary["successes"], "episodes": episodes,
                "lengths": [e.length for e in reports[t].episodes],
                "success": [bool(e.success) for e in reports[t].episodes]} for t in chosen}}
        path.write_text(json.dumps(found, indent=2))
    names = [n for n in AGREEMENT_SETTINGS if n in found]
    found = {n: found[n] for n in names}
    print("\n" + format_table(["task", *names], [[t, *(f"{found[n]['tasks'][t]['successes']}/{episodes}"
                                                          for n in names)] for t in chosen]), flush=True)
    return found


def splits_of(summaries: dict) -> dict:
    """Success per difficulty split and over every task, pooled over episodes."""
    from vlascope.evaluate.metrics import success_by_group

    return success_by_group(summaries, DIFFICULTY_SPLITS)


def print_table(evals: dict) -> dict:
    from vlascope.evaluate.metrics import format_success, format_table

    splits = {}
    for episodes, result in evals.items():
        tasks = result["tasks"]
        print("\n" + format_table(["task", "split", *[f"success ({episodes} a task)", "95% CI"]],
                                  [[t, difficulty_of(t), *format_success(s)] for t, s in tasks.items()]))
        splits[episodes] = splits_of(tasks)
        print("\n" + format_table(["split", "tasks", "success", "95% CI"],
                                  [[name, str(s["tasks"]), *format_success(s)] for name, s in splits[episodes].items()]))
    print("\npublished MT50 averages on this protocol: " +
          ", ".join(f"{name} {value}%" for name, value in PUBLISHED.items()))
    return splits


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", nargs="+", default=["mt50"], help="mt50, mt10, scene-pairs or task names")
    p.add_argument("--inputs", choices=sorted(INPUT_SETS), default="protocol",
                   help="protocol: corner2 + hand state; state: object state in place of the camera "
                        "(off the protocol, a reference)")
    p.add_argument("--demos", type=int, default=50)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--policy", default="flow")
    p.add_argument("--policy-options", default="", help="e.g. vision_widths=[64,128,256,512]")
    p.add_argument("--train-options", default="", help="e.g. lr=3e-4,ema_decay=0.999")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=256, help="per process")
    p.add_argument("--ckpt-every", type=int, default=2000)
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                   help="--no-compile takes it back from a recipe")
    p.add_argument("--gpus", type=int, default=1)
    p.add_argument("--episodes", type=int, nargs="+", default=[10])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None,
                   help="collection processes (default: 8 a GPU: rendering, not the cores, sets the pace)")
    p.add_argument("--eval-workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    p.add_argument("--envs-per-worker", type=int, default=8)
    p.add_argument("--executions", nargs="*", default=[],
                   help="execution settings the trained policy is also evaluated under, at the first "
                        "--episodes count, e.g. n_action_steps=4 'n_action_steps=1,temporal_ensemble=0.01'")
    p.add_argument("--stages", nargs="+", default=["collect", "observe", "train", "eval"],
                   choices=["collect", "observe", "scaling", "train", "eval", "diagnose", "agreement"],
                   help="observe: the doctor's observability check on each task's dataset; "
                        "scaling: short runs for training throughput (--scaling-runs); diagnose: the "
                        "doctor on the trained policy, task by task (--diagnose-tasks); agreement: those "
                        "tasks' episodes run again in a pool of their own and in this process, compiled "
                        "and eager")
    p.add_argument("--diagnose-tasks", nargs="*", default=[],
                   help="tasks the diagnose and agreement stages examine (default: the three least "
                        "solved in the first eval)")
    p.add_argument("--diagnose-episodes", type=int, default=10, help="the doctor's closed-loop episodes per condition")
    p.add_argument("--scaling-runs", nargs="+", default=["1", "2"],
                   help="GPUS or GPUS:train options of each throughput run, e.g. 1 2 2:ddp_split_graph=true")
    p.add_argument("--scaling-steps", type=int, default=1000)
    p.add_argument("--out", default="outputs/mt50")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="a vlascope checkpoint folder the eval, diagnose and agreement stages examine "
                        "instead of the one this run trains (no train stage then)")
    p.add_argument("--demos-from", type=Path, default=None,
                   help="the --out of a run that collected these tasks' demos: use them, linked, "
                        "with its collection record, instead of collecting again")
    args = parse_args(p, RECIPES)
    from vlascope.policies.base import check_execution_settings

    for execution in args.executions:
        try:
            check_execution_settings(parse_options(execution))
        except ValueError as exc:
            p.error(f"--executions {execution!r}: {exc}")
    if args.workers is None:
        import torch

        args.workers = min(os.cpu_count() or 1, 8 * max(1, torch.cuda.device_count()))
    tasks = parse_tasks(p, args.tasks, TASK_SETS)
    if args.checkpoint is not None:
        from vlascope.errors import VlascopeError
        from vlascope.policies.factory import read_config

        if "train" in args.stages or "scaling" in args.stages:
            p.error("--checkpoint: a policy already trained is examined; leave train and scaling out of --stages")
        try:
            read_config(args.checkpoint)
        except VlascopeError as exc:
            p.error(f"--checkpoint: {exc}")
    strangers = [t for t in args.diagnose_tasks if t not in tasks]
    if strangers:
        p.error(f"--diagnose-tasks: {', '.join(strangers)} not among this run's tasks")
    out = ensure_dir(args.out)
    if args.demos_from is not None:
        adopt_demos(p, args.demos_from, args, tasks, out)
    result = {"tasks": tasks, "protocol": {"inputs": INPUT_SETS[args.inputs] + ["instruction"],
                                           "published_inputs": args.inputs == "protocol", "demos": args.demos,
                                           "image_size": args.image_size, "camera_view": "lerobot"},
              "args": vars(args)}
    if "collect" in args.stages:
        collect_stage(args, tasks, out)
    if "observe" in args.stages:
        result["observability"] = observe_stage(args, tasks, out)
    if "scaling" in args.stages:
        result["scaling"] = scaling_stage(args, tasks, out)
    if "train" in args.stages:
        train_stage(args, tasks, out)
    result.update(recorded_stages(out))  # collection and training as recorded, whichever run did them
    evals = None
    if "eval" in args.stages:
        evals = eval_stage(args, tasks, out)
        result["eval"] = evals
        result["splits"] = print_table(evals)
        result["published"] = PUBLISHED
    if "diagnose" in args.stages:
        result["diagnosis"] = diagnose_stage(args, tasks, out, evals)
    if "agreement" in args.stages:
        result["agreement"] = agreement_stage(args, tasks, out, evals)
    name = "mt50" if args.tasks == ["mt50"] or args.recipe else "mt50-" + "-".join(args.tasks)
    write_results(name, args, result)


if __name__ == "__main__":
    main()
