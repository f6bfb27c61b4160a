"""Run every check on a dataset (and optionally a checkpoint and a task) and write the report.

A check is a function `check_x(ctx) -> list[Finding]`; a check that crashes becomes a warning
finding that says so, so one broken check never hides the others' results.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from vlascope.data import TaskSet, read_dataset
from vlascope.devices import resolve_device
from vlascope.doctor.context import DoctorContext, float_obs_keys
from vlascope.doctor.data_checks import DATA_CHECKS, dataset_statistics
from vlascope.doctor.findings import Finding, skipped
from vlascope.doctor.model_checks import MODEL_CHECKS
from vlascope.doctor.report import summary_text, write_report
from vlascope.doctor.rollout_checks import ROLLOUT_CHECKS, check_eval_coverage, collect_held_out
from vlascope.errors import VlascopeError
from vlascope.policies import build_for_episodes, check_fits, load_pretrained, make_config
from vlascope.policies.interface import (ActionPolicy, NotProvided, VlascopePolicy, check_inputs,
                                         vlascope_pipeline)
from vlascope.policies.foreign import is_foreign, load_foreign_policy

CHECKS = [*DATA_CHECKS, check_eval_coverage, *MODEL_CHECKS, *ROLLOUT_CHECKS]
# Fields of a policy config that come from the data, not from the user's choices.
DATA_FIELDS = ("obs_dims", "action_dim", "task_names", "language_dim", "instructions", "image_size")


def check_id(check) -> str:
    return check.__name__.removeprefix("check_").replace("_", "-")


def build_context(dataset: str, out: str, key_map: str | None = None, checkpoint: str | None = None,
                  task: str | None = None, quick: bool = False, policy_name: str = "flow",
                  seed: int = 0, eval_episodes: int = 20, device: str = "cpu",
                  obs_keys: list[str] | None = None, adapter: str | None = None) -> DoctorContext:
    """The doctor's context for a dataset and, optionally, the policy to diagnose: a vlascope
    checkpoint, a LeRobot pretrained_model folder, or a user's adapter (`adapter`)."""
    instruction = None
    if task is not None:
        from vlascope.envs import check_task, instruction_for

        check_task(task)
        instruction = instruction_for(task)
    # A LeRobot folder of several tasks is examined on the episodes of --task.
    data = read_dataset(dataset, key_map=key_map, task=task, instruction=instruction)
    torch_device = resolve_device(device)
    run_dir = None
    if is_foreign(checkpoint, adapter):
        policy = load_foreign_policy(checkpoint, torch_device, adapter)
        check_inputs(policy, data.obs_shapes, data.action_dim, dataset)
        return DoctorContext(dataset=data, out_dir=Path(out), policy=policy, policy_name=policy.name,
                             checkpoint=Path(checkpoint) if checkpoint else None, task=task,
                             quick=quick, seed=seed, eval_episodes=eval_episodes, device=torch_device)
    if checkpoint is not None:
        module = load_pretrained(checkpoint, device=torch_device)
        policy_name = module.checkpoint_config["policy"]
        overrides = {k: v for k, v in module.checkpoint_config["policy_config"].items()
                     if k not in DATA_FIELDS}
        check_fits(module.config, data.obs_shapes, data.action_dim, dataset)
        ckpt = Path(checkpoint)
        if ckpt.parent.name == "checkpoints":
            run_dir = ckpt.parent.parent
    else:
        if obs_keys:
            missing = [k for k in obs_keys if k not in data.obs_shapes]
            if missing:
                raise VlascopeError(f"{dataset}: --obs-keys {missing} not in the dataset "
                                    f"(has: {', '.join(sorted(data.obs_shapes))})")
            present = list(obs_keys)
        else:
            wanted = make_config(policy_name).obs_keys
            present = [k for k in wanted if k in data.obs_shapes] or float_obs_keys(data.episodes)
        overrides = {"obs_keys": present}

    def build(episodes):
        return build_for_episodes(policy_name, overrides, episodes, TaskSet.of([data]))

    make_policy = vlascope_pipeline(build, policy_name)
    policy = VlascopePolicy(module, policy_name, build, checkpoint) if checkpoint is not None else None
    return DoctorContext(dataset=data, out_dir=Path(out), make_policy=make_policy,
                         policy_name=policy_name, policy=policy, inputs=overrides["obs_keys"],
                         checkpoint=Path(checkpoint) if checkpoint else None, run_dir=run_dir,
                         task=task, quick=quick, seed=seed, eval_episodes=eval_episodes,
                         device=torch_device)


def run_checks(ctx: DoctorContext, checks=None, progress: bool = True) -> list[Finding]:
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    ctx.statistics["dataset"] = dataset_statistics(ctx)
    ctx.cache["held_out_episodes"] = collect_held_out(ctx)
    findings, timings = [], {}
    for check in checks or CHECKS:
        name = check_id(check)
        start = time.time()
        try:
            found = check(ctx)
        except NotProvided as exc:  # the policy lacks what this check needs
            found = [skipped(name, str(exc))]
        except Exception as exc:  # a broken check is reported, never fatal
            where = traceback.extract_tb(exc.__traceback__)[-1]
            found = [Finding(name, "warning", f"the check itself failed: {type(exc).__name__}: {exc}",
                             {"at": f"{Path(where.filename).name}:{where.lineno}"},
                             "Report this with the dataset's layout; the other checks still ran.")]
        timings[name] = round(time.time() - start, 2)
        if progress:
            worst = min(found, key=lambda f: f.rank).severity if found else "ok"
            print(f"  {name:26s} {worst:8s} {timings[name]:6.1f}s", flush=True)
        findings += found
    ctx.statistics["check_seconds"] = timings
    return findings


def run_doctor(ctx: DoctorContext, checks=None, progress: bool = True) -> list[Finding]:
    start = time.time()
    findings = run_checks(ctx, checks, progress)
    skipped_ids = sorted({f.id for f in findings if f.evidence.get("skipped")})
    header = {"dataset": ctx.dataset.path, "task": ctx.dataset.task or "?",
              "demos": len(ctx.dataset.episodes),
              "checkpoint": str(ctx.checkpoint) if ctx.checkpoint else "none",
              "policy": f"{ctx.policy.name} (trained in {ctx.policy.origin})" if ctx.policy else ctx.policy_name,
              "checks run": ", ".join(sorted({f.id for f in findings} - set(skipped_ids))),
              "checks skipped (reasons below)": ", ".join(skipped_ids) or "none",
              "evaluated on": ctx.task or "-", "mode": "quick" if ctx.quick else "full",
              "seconds": round(time.time() - start, 1)}
    ctx.statistics["header"] = header
    write_report(ctx.out_dir, findings, header, ctx.statistics, ctx.arrays)
    if progress:
        print(summary_text(findings))
        print(f"report: {ctx.out_dir / 'report.html'} (also report.md, findings.json)")
    return findings
