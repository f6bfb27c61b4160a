"""Command line: argument parsing only; the work is done by the packages it calls."""

from __future__ import annotations

import argparse
import os
import sys


def _collect(args) -> None:
    from vlascope.envs.collect import collect_demos

    report = collect_demos(args.task, args.episodes, args.out, seed=args.seed,
                           fixed_init=args.fixed_init, camera=args.camera,
                           image_size=args.image_size, max_steps=args.max_steps)
    print(f"wrote {report.kept} demos to {report.path} in {report.seconds:.1f}s; "
          f"dropped {len(report.dropped_seeds)} failed expert episode(s) of {report.attempted} "
          f"(expert success {100 * report.expert_success_rate:.0f}%)")


def _main_process() -> bool:
    """False in the extra processes `accelerate launch` starts: one report, not one each."""
    return int(os.environ.get("RANK", "0")) == 0


def _train(args) -> None:
    from vlascope.errors import VlascopeError
    from vlascope.train.loop import check_config_file, load_config_file, make_train_config, resume, train

    if args.resume:
        result = resume(args.resume, steps=args.steps)
        if _main_process():
            print(f"resumed {args.resume}: {result.seconds:.0f}s more, final loss "
                  f"{result.final_loss:.4f}; checkpoint: {result.last_checkpoint}")
        return
    missing = [f"--{k}" for k in ("dataset", "policy", "out") if not getattr(args, k)]
    if missing:
        raise VlascopeError(f"train needs {', '.join(missing)} (or --resume RUN_DIR)")

    file_cfg = load_config_file(args.config)
    if args.config:
        check_config_file(args.config, file_cfg, args.policy)
    train_over = dict(file_cfg.get("train") or {})
    for key in ("steps", "batch_size", "lr", "seed", "device"):
        if getattr(args, key) is not None:
            train_over[key] = getattr(args, key)
    if args.compile:
        train_over["compile"] = True
    policy_over = dict(file_cfg.get("policy") or {})
    if args.obs_keys:
        policy_over["obs_keys"] = args.obs_keys
    if args.aux_keys:
        policy_over["aux_keys"] = args.aux_keys
    result = train(args.dataset, args.policy, args.out, make_train_config(train_over),
                   policy_over, skip_bad_demos=args.skip_bad_demos)
    if _main_process():
        print(f"trained {args.policy} in {result.seconds:.0f}s ({result.samples_per_second:.0f} "
              f"samples/s), final loss {result.final_loss:.4f}; checkpoint: {result.last_checkpoint}")


def _eval(args) -> None:
    from vlascope.envs.metaworld import DIFFICULTY_SPLITS, expand_tasks
    from vlascope.evaluate.checkpoints import evaluate_checkpoints
    from vlascope.evaluate.metrics import (format_pooled, format_success, format_summary_table, format_table,
                                           success_by_group)
    from vlascope.fileio import write_json

    names = [name.strip() for name in args.task.split(",") if name.strip()]
    tasks = list(dict.fromkeys(expand_tasks(names)))
    several = len(args.checkpoints) > 1
    execution = {k: v for k, v in (("n_action_steps", args.action_steps),
                                   ("temporal_ensemble", args.temporal_ensemble)) if v is not None}
    # None leaves evaluate()'s default for envs_per_worker, the one place it is written.
    run = {} if args.envs_per_worker is None else {"envs_per_worker": args.envs_per_worker}
    reports, pooled = evaluate_checkpoints(
        args.checkpoints, tasks, args.episodes, seed=args.seed, device=args.device,
        execution=execution, video_path=args.video, fixed_init=args.fixed_init,
        max_steps=args.max_steps, workers=args.workers, compile=args.compile, adapter=args.adapter, **run)
    for ckpt, by_task in zip(args.checkpoints, reports):
        if args.per_episode:
            for task, report in by_task.items():
                for e in report.episodes:
                    print(f"  {ckpt + ' ' if several else ''}{task + ' ' if len(tasks) > 1 else ''}seed {e.seed}: "
                          f"{'success' if e.success else 'fail'} in {e.length} steps, return "
                          f"{e.episode_return:.1f}" + (f" ({e.error})" if e.error else ""))
    print(format_summary_table([(f"{task} {ckpt}" if several else task, report.summary)
                                for ckpt, by_task in zip(args.checkpoints, reports)
                                for task, report in by_task.items()]))
    # Several tasks: success per MetaWorld difficulty split (LeRobot's grouping) and over all.
    groups = []
    if len(tasks) > 1:
        for ckpt, by_task in zip(args.checkpoints, reports):
            groups.append(success_by_group({t: r.summary for t, r in by_task.items()}, DIFFICULTY_SPLITS))
            print(("\n" + ckpt if several else "") + "\n" + format_table(
                ["split", "tasks", "success", "95% CI"],
                [[name, str(g["tasks"]), *format_success(g)] for name, g in groups[-1].items()]))
    if pooled:
        print(f"pooled over {pooled['runs']} checkpoints: {format_pooled(pooled)}")
    for by_task in reports:
        report = next(iter(by_task.values()))  # every task's report holds the whole run's timing
        print(f"{report.seconds:.1f}s, {report.env_steps_per_second:.0f} env steps/s")
    if args.json:
        def record(i: int) -> dict:
            if len(tasks) == 1:
                return reports[i][tasks[0]].to_json()
            return {"tasks": {t: r.to_json() for t, r in reports[i].items()}, "splits": groups[i]}

        write_json(args.json, {"runs": [{"checkpoint": c, **record(i)} for i, c in enumerate(args.checkpoints)],
                               "pooled": pooled} if several else record(0))
        print(f"metrics: {args.json}")


def _quickstart(args) -> None:
    from vlascope.quickstart import run_quickstart

    run_quickstart(args.out, task=args.task, policy=args.policy, demos=args.demos,
                   steps=args.steps, episodes=args.episodes, doctor=args.doctor)


def _doctor(args) -> None:
    from vlascope.doctor import build_context, run_doctor

    ctx = build_context(args.dataset, args.out, key_map=args.key_map, checkpoint=args.checkpoint,
                        task=args.task, quick=args.quick, policy_name=args.policy, seed=args.seed,
                        eval_episodes=args.episodes, device=args.device, obs_keys=args.obs_keys,
                        adapter=args.adapter)
    print(f"doctor: {len(ctx.dataset.episodes)} demos from {args.dataset}"
          + (f", checkpoint {args.checkpoint}" if args.checkpoint else "")
          + (f", task {args.task}" if args.task else "") + (" (quick)" if args.quick else ""))
    findings = run_doctor(ctx)
    if args.fail_on:
        levels = ["error"] if args.fail_on == "error" else ["error", "warning"]
        failing = [f for f in findings if f.severity in levels]
        if failing:
            print(f"vlascope doctor: {len(failing)} finding(s) at --fail-on {args.fail_on} or worse: "
                  f"{', '.join(sorted({f.id for f in failing}))}", file=sys.stderr)
            return 1
    return 0


def _data_inspect(args) -> None:
    import dataclasses

    from vlascope.doctor.inspect import format_inspection, inspect_dataset
    from vlascope.fileio import write_json

    info = inspect_dataset(args.path, args.key_map, args.plots, args.obs_keys)
    print(format_inspection(info))
    if args.json:
        write_json(args.json, {**info, "findings": [dataclasses.asdict(f) for f in info["findings"]]})


def _data_convert(args) -> None:
    from vlascope.data.read import convert_dataset

    data, kind = convert_dataset(args.source, args.dest, key_map=args.key_map, fps=args.fps)
    print(f"wrote {len(data.episodes)} demos ({data.num_frames} frames) to {args.dest} as {kind}")


def _sweep(args) -> None:
    from vlascope.evaluate.sweep import sweep_run

    result = sweep_run(args.run_dir, args.task, args.episodes, seed=args.seed, device=args.device,
                       max_steps=args.max_steps)
    print(result.format_table())
    json_path, csv_path = result.save(args.out)
    print(f"sweep: {json_path}, {csv_path}")


def _tasks(args) -> None:
    from vlascope.envs import instruction_for, task_names

    for name in task_names():
        print(f"{name:32s} {instruction_for(name)}")


def build_parser() -> argparse.ArgumentParser:
    from vlascope.policies import POLICY_NAMES

    p = argparse.ArgumentParser(prog="vlascope", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("collect", help="collect scripted-expert demos into an HDF5 dataset")
    c.add_argument("--task", required=True)
    c.add_argument("--episodes", type=int, default=50)
    c.add_argument("--out", required=True)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--fixed-init", action="store_true",
                   help="start every demo from one initial state (reproduces memorisation)")
    c.add_argument("--camera", nargs="+", default=None,
                   help="also store images from these cameras, e.g. corner2 (or corner2 gripperPOV)")
    c.add_argument("--image-size", type=int, default=96)
    c.add_argument("--max-steps", type=int, default=None)
    c.set_defaults(func=_collect)

    t = sub.add_parser("train", help="train a policy on one or more datasets")
    t.add_argument("--dataset", action="append",
                   help="HDF5 dataset; repeat for multi-task training")
    t.add_argument("--policy", help=f"one of {', '.join(POLICY_NAMES)}")
    t.add_argument("--out")
    t.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a run from its newest checkpoint (--steps to extend it)")
    t.add_argument("--steps", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--device")
    t.add_argument("--config", help="YAML with 'train:' and 'policy:' sections")
    t.add_argument("--compile", action="store_true", help="torch.compile the training step")
    t.add_argument("--obs-keys", nargs="+", help="the policy's inputs, e.g. robot_state goal corner2_image")
    t.add_argument("--aux-keys", nargs="+", help="recorded state the policy also learns to predict from "
                   "its inputs (training only), e.g. object_state for an image policy")
    t.add_argument("--skip-bad-demos", action="store_true",
                   help="train without demos holding NaN/inf values (each is named in a warning)")
    t.set_defaults(func=_train)

    e = sub.add_parser("eval", help="evaluate checkpoints closed-loop in MetaWorld")
    e.add_argument("checkpoints", nargs="+", metavar="checkpoint",
                   help="one or more vlascope checkpoint folders or LeRobot pretrained_model folders "
                        "(loaded by lerobot, processors included); several (e.g. one recipe's "
                        "training seeds) run the same episodes and are also pooled: one training "
                        "run is one draw")
    e.add_argument("--adapter", help="package.module:factory returning your own policy behind "
                   "vlascope.policies.interface.ActionPolicy (called with checkpoint=, device=)")
    e.add_argument("--task", required=True,
                   help="a MetaWorld task, several separated by commas (reach-v3,push-v3), or mt10 / "
                        "mt50: several share one pool of workers and are also reported per "
                        "difficulty split")
    e.add_argument("--episodes", type=int, default=50, help="episodes a task")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--fixed-init", action="store_true",
                   help="every episode from the state a --fixed-init dataset of this seed uses")
    e.add_argument("--max-steps", type=int, default=None)
    e.add_argument("--video", help="write an mp4 of the first episodes")
    e.add_argument("--json", help="write per-episode and overall metrics as JSON")
    e.add_argument("--per-episode", action="store_true")
    e.add_argument("--device", default="auto")
    e.add_argument("--workers", type=int, default=0,
                   help="worker processes running envs in parallel, one batched policy call "
                        "for the envs waiting for a chunk (0: one env in this process; --video "
                        "forces 0)")
    e.add_argument("--envs-per-worker", type=int,
                   help="envs each worker steps in turn while the policy computes (default: "
                        "evaluate()'s, 8)")
    e.add_argument("--compile", action="store_true",
                   help="torch.compile the policy (CUDA graphs on a GPU); compiling costs the first calls")
    e.add_argument("--action-steps", type=int,
                   help="actions executed per predicted chunk (the query frequency); default: the config's")
    e.add_argument("--temporal-ensemble", type=float,
                   help="ACT-style ensembling of overlapping chunks with weights exp(-k * age)")
    e.set_defaults(func=_eval)

    q = sub.add_parser("quickstart", help="collect, train, evaluate: the whole loop in one go")
    q.add_argument("--out", default="outputs/quickstart")
    q.add_argument("--task", default="reach-v3")
    q.add_argument("--policy", default="flow")
    q.add_argument("--demos", type=int, default=50)
    q.add_argument("--steps", type=int, default=None)
    q.add_argument("--episodes", type=int, default=50)
    q.add_argument("--doctor", choices=["full", "quick", "off"], default="full",
                   help="run the doctor on the result (full: with overfit and rollout checks)")
    q.set_defaults(func=_quickstart)

    d = sub.add_parser("doctor", help="diagnose a dataset (and a checkpoint): findings, plots, fixes")
    d.add_argument("--dataset", required=True)
    d.add_argument("--out", required=True, help="report folder")
    d.add_argument("--key-map", help="YAML mapping the file's keys to vlascope's (see data/keymap.py)")
    d.add_argument("--checkpoint", help="a vlascope checkpoint folder (runs/x/checkpoints/last) or a "
                   "LeRobot pretrained_model folder (loaded by lerobot, processors included)")
    d.add_argument("--adapter", help="package.module:factory returning your own policy behind "
                   "vlascope.policies.interface.ActionPolicy (called with checkpoint=, device=)")
    d.add_argument("--task", help="a MetaWorld task: enables eval-coverage and train-eval-gap")
    d.add_argument("--quick", action="store_true",
                   help="data checks and cheap model checks only (no overfit, head isolation, rollouts)")
    d.add_argument("--policy", default="flow",
                   help=f"pipeline to test without --checkpoint: one of {', '.join(POLICY_NAMES)}")
    d.add_argument("--obs-keys", nargs="+",
                   help="the policy's inputs without --checkpoint (default: the pipeline's)")
    d.add_argument("--episodes", type=int, default=20, help="closed-loop episodes per condition")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--device", default="auto", help="auto: the GPU when there is one")
    d.add_argument("--fail-on", choices=["error", "warning"],
                   help="exit with status 1 when a finding at this level (or worse) exists: a gate for "
                   "a training pipeline (the report is written either way)")
    d.set_defaults(func=_doctor)

    w = sub.add_parser("sweep", help="evaluate every checkpoint of a training run")
    w.add_argument("run_dir")
    w.add_argument("--task", required=True)
    w.add_argument("--episodes", type=int, default=20)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--max-steps", type=int, default=None)
    w.add_argument("--out", default=None, help="folder for sweep.json/sweep.csv (default: RUN_DIR)")
    w.add_argument("--device", default="auto")
    w.set_defaults(func=_sweep)

    data = sub.add_parser("data", help="look into datasets").add_subparsers(dest="data_command", required=True)
    i = data.add_parser("inspect", help="demos, keys and shapes, per-dimension statistics, warnings")
    i.add_argument("path")
    i.add_argument("--key-map", help="YAML/JSON mapping the file's keys to vlascope's")
    i.add_argument("--plots", help="write the data checks' plots into this folder")
    i.add_argument("--obs-keys", nargs="+", help="a policy's inputs: also check their observability")
    i.add_argument("--json", help="write the inspection as JSON")
    i.set_defaults(func=_data_inspect)

    v = data.add_parser("convert", help="HDF5 (any layout, with --key-map) <-> LeRobot v3 folder")
    v.add_argument("source")
    v.add_argument("dest", help="a .hdf5 file, or a folder for the LeRobot layout")
    v.add_argument("--key-map", help="YAML/JSON mapping the source HDF5's keys to vlascope's")
    v.add_argument("--fps", type=int, default=80, help="frame rate written to a LeRobot dataset")
    v.set_defaults(func=_data_convert)

    k = sub.add_parser("tasks", help="list MetaWorld tasks and their instructions")
    k.set_defaults(func=_tasks)
    return p


def main(argv: list[str] | None = None) -> int:
    from vlascope.errors import VlascopeError

    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except VlascopeError as exc:
        print(f"vlascope {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vlascope {args.command}: interrupted", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
