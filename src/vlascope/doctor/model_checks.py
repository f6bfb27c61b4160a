"""Checks that build, train or run the policy, all through the one policy interface
(policies.interface.ActionPolicy): normalisation, initial loss, dead parameters, conditioning,
head isolation, overfitting, open-loop error and mode collapse. A check that needs a capability
the policy does not offer raises NotProvided and is reported as skipped, with the reason."""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from vlascope.data import WindowDataset
from vlascope.doctor.context import DoctorContext
from vlascope.doctor.data_checks import UNEXPLAINED_LIMIT, observability_shares, standardised, unexplained_by
from vlascope.doctor.findings import Finding, ok, rounded, skipped
from vlascope.doctor.head_isolation import fit_synthetic
from vlascope.doctor.plots import (plot_action_histograms, plot_bars, plot_error_histograms,
                                   plot_loss_curves, plot_scatter, plot_timeseries)
from vlascope.evaluate.sweep import read_loss_log
from vlascope.policies.interface import (ActionPolicy, FeatureNormalization, NotProvided, PolicySpec, task_index,
                                        task_names)

# A normaliser that multiplies a dimension by more than this amplifies float noise and small
# drifts into huge inputs (reach-v3's gripper reading at std 0.0012 was scaled x860).
MAX_SCALE = 100.0
# Statistics from other data: the dataset's centre sits this many of the normaliser's spreads
# away from the normaliser's, or the two spreads differ by this factor (an action spread off by
# 2x moves the robot twice or half as far).
STATS_SHIFT = 3.0
STATS_SPREAD_RATIO = 2.0
# One task of a checkpoint trained on N tasks: its values must lie inside the range the
# statistics record (min/max), give or take this share of it. Without a recorded range, a 1/N
# share of any data has its second moment about the whole's mean within N variances; tasks
# differ in length, hence SHARE_SLACK times that.
RANGE_TOLERANCE = 0.05
SHARE_SLACK = 4.0
# Open-loop error in units of the action's std. 0.1 is what a pipeline that works reaches when
# it overfits 5 demos; a policy that misses by 0.3 std on its own training data is not fitted.
OVERFIT_RELATIVE_ERROR = 0.1
TRAIN_RELATIVE_ERROR = 0.3
# Head isolation asks whether the head can learn a map at all: a head that ignores its condition
# lands near 0.8 target std (the spread of the targets), one that learns it well below 0.25.
ISOLATION_RELATIVE_ERROR = 0.25
# An input whose shuffling across samples moves the predicted chunk by less than this share of
# what shuffling every input does never reaches the output (a dropped input moves it by exactly
# 0; a live image input of a policy after 30 training steps already moves it by ~3e-4). A trained
# policy's input below WEAK_INPUT is barely read.
IGNORED_INPUT = 1e-5
# Parameters above which an image policy's warm-up batch shrinks on a CPU.
LARGE_ON_CPU = 5_000_000
WEAK_INPUT = 1e-2
# Overfit budget: steps and batch, and a cap in CPU seconds of this process (not wall time, so
# a busy machine does not cut the fit short) so that a large foreign model stays bounded.
OVERFIT_STEPS, OVERFIT_BATCH = 1500, 256
OVERFIT_SECONDS = {"cpu": 600.0, "cuda": 600.0}
# A budget that cannot reach a fifth of the steps gives no verdict either way: the test stops
# once the pace of its first PACE_STEPS steps shows that, instead of spending the budget.
OVERFIT_MIN_SHARE, PACE_STEPS = 0.2, 3


def optimise(policy: ActionPolicy, batch_of, steps: int, max_seconds: float | None = None,
             clip: float = 1.0, min_steps: int = 0) -> tuple[list[float], list[float]]:
    """`steps` steps of the policy's own loss and optimiser on batches from `batch_of(step)`,
    gradient norm clipped at `clip`; stops early at a non-finite loss, after `max_seconds` of
    this process's CPU time, or after PACE_STEPS steps whose pace cannot reach `min_steps`
    within `max_seconds`."""
    module = policy.module()
    trainable = [p for p in module.parameters() if p.requires_grad]
    opt, sched = policy.optimizer(trainable, steps)
    policy.train()
    losses, grad_norms = [], []
    start = time.process_time()
    for step in range(steps):
        loss = policy.loss(batch_of(step))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norms.append(float(torch.nn.utils.clip_grad_norm_(trainable, clip)))
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(loss.item())
        if not np.isfinite(losses[-1]):
            break
        if max_seconds is not None:
            spent = time.process_time() - start
            if spent > max_seconds or (step + 1 == PACE_STEPS and spent / PACE_STEPS * min_steps > max_seconds):
                break
    opt.zero_grad(set_to_none=True)
    policy.eval()
    return losses, grad_norms


def warm_up(policy: ActionPolicy, batch: dict, steps: int = 30) -> tuple[list, list]:
    """A few steps of the policy's own recipe on one batch, gradient norm clipped at 1.

    Where a bad init or an unclipped gradient shows; and it moves zero-initialised output
    layers, without which nothing upstream of them would get a gradient or move the output.
    """
    return optimise(policy, lambda step: batch, steps)


def warm_up_windows(ctx: DoctorContext, policy: ActionPolicy) -> int:
    """How many windows a warm-up batch holds: 256, or 32 for a large image policy on a CPU (a
    ResNet-18 over 256 frames makes each of the 30 steps take seconds). Small policies keep 256:
    fewer windows make the 30 steps noisier, and a zero-initialised output layer moves less."""
    images = any(len(shape) == 3 for shape in policy.spec.obs_shapes.values())
    if not images or torch.device(ctx.device).type != "cpu":
        return 256
    try:
        size = sum(p.numel() for p in policy.module().parameters())
    except NotProvided:
        return 256
    return 32 if size > LARGE_ON_CPU else 256


def policy_under_test(ctx: DoctorContext) -> tuple[ActionPolicy, str]:
    """The trained policy if there is one, else the pipeline's policy after a few steps."""
    if ctx.policy is not None:
        return ctx.policy, "the checkpoint"
    if "warm_policy" not in ctx.cache:
        policy = ctx.fresh_policy()
        warm_up(policy, sample_batch(ctx, policy, ctx.episodes, warm_up_windows(ctx, policy), ctx.seed))
        ctx.cache["warm_policy"] = policy
    return ctx.cache["warm_policy"], "a fresh policy after 30 training steps"


def dataset_task_index(ctx: DoctorContext, policy: ActionPolicy) -> int | None:
    """The examined dataset's task as `policy` numbers it (by name or by its instruction); None
    for a policy of one task or one trained without it."""
    return task_index(task_names(policy), ctx.dataset.task, ctx.dataset.attrs.get("instruction"))


def sample_batch(ctx: DoctorContext, policy: ActionPolicy, episodes, max_windows: int | None = None,
                 seed: int = 0) -> dict:
    """Up to `max_windows` random windows of `episodes` in the policy's shape; all, in time
    order, for None."""
    # The dataset's task as this policy numbers it: a checkpoint of several tasks has its own
    # index for it, an untrained twin fitted to this one dataset knows one task.
    task = dataset_task_index(ctx, policy) or 0
    spec = policy.spec
    # Every check samples from the same few episode lists: stack their windows once (for image
    # datasets that is hundreds of MB), keyed by the episodes, the window shape and the task.
    offset, length = spec.action_window
    # The loss's auxiliary targets too, where the data has them: without them the loss is not the
    # one the policy trained on, and the head that reads them out gets no gradient.
    keys = spec.obs_keys + present_targets(spec, episodes)
    key = ("windows", tuple(map(id, episodes)), tuple(keys), spec.n_obs_steps, offset, length, task)
    if key not in ctx.cache:
        ctx.cache[key] = WindowDataset(episodes, keys, spec.n_obs_steps, length,
                                       [task] * len(episodes), offset).all_windows(ctx.device)
    windows = ctx.cache[key]
    if max_windows is None:
        return windows
    n = len(windows["action"])
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_windows].to(ctx.device)
    return subset(windows, idx)


def present_targets(spec: PolicySpec, episodes) -> list[str]:
    """The loss's auxiliary targets that every one of `episodes` records."""
    return [k for k in spec.targets if all(k in ep.obs for ep in episodes)]


def truth_of(policy: ActionPolicy, batch: dict) -> np.ndarray:
    """The demo actions a predicted chunk is compared with, (N, horizon, A)."""
    return policy.spec.predicted_span(batch["action"]).float().cpu().numpy()


def subset(batch: dict, idx) -> dict:
    return {k: ({n: t[idx] for n, t in v.items()} if isinstance(v, dict) else v[idx])
            for k, v in batch.items()}


def in_parts(batch: dict, size: int = 256):
    """(offset, part) for consecutive parts of `batch` of at most `size` windows."""
    for i in range(0, len(batch["action"]), size):
        yield i, subset(batch, slice(i, i + size))


@torch.no_grad()
def predict(policy: ActionPolicy, batch: dict, seed: int = 0, batch_size: int = 256) -> np.ndarray:
    """The policy's chunks for every window of `batch`, (N, horizon, A), in raw action units.
    The same seed gives the same sampling noise, so two calls differ only by their inputs."""
    policy.eval()
    return np.concatenate([policy.predict_chunk(part["obs"], seed + i, part["task_index"]).float().cpu().numpy()
                           for i, part in in_parts(batch, batch_size)])


def _dataset_values(ctx: DoctorContext, key: str) -> np.ndarray | None:
    if key == "action":
        return np.concatenate([e.actions for e in ctx.episodes])
    if key in ctx.episodes[0].obs and ctx.episodes[0].obs[key].dtype != np.uint8:
        return np.concatenate([e.obs[key] for e in ctx.episodes]).reshape(-1, ctx.episodes[0].obs[key].shape[-1])
    return None


def stats_mismatch(feature: FeatureNormalization, data: np.ndarray) -> tuple[float, float] | None:
    """(largest shift of the data's centre in the normaliser's spread units, largest spread
    ratio either way) between a feature's normalisation and `data`; None if undecidable."""
    ckpt = feature.centre_spread()
    if ckpt is None:
        return None
    centre, spread = ckpt
    if feature.mode == "minmax":
        d_centre, d_spread = (data.max(0) + data.min(0)) / 2, (data.max(0) - data.min(0)) / 2
    else:
        d_centre, d_spread = data.mean(0), data.std(0)
    moving = (spread > 1e-6) & (d_spread > 1e-6)
    # A dimension constant in both (a gripper command held at 1) can still sit somewhere else.
    constant = (spread <= 1e-6) & (d_spread <= 1e-6)
    moved = np.abs(d_centre - centre)[constant] > 1e-3 * (1 + np.abs(centre[constant]))
    if not moving.any() and not constant.any():
        return None
    shift = np.abs(d_centre - centre)[moving] / spread[moving]
    ratio = np.maximum(d_spread[moving] / spread[moving], spread[moving] / d_spread[moving])
    return (float("inf") if moved.any() else float(shift.max(initial=0.0)), float(ratio.max(initial=1.0)))


def _mismatched(m) -> bool:
    return m is not None and (m[0] > STATS_SHIFT or m[1] > STATS_SPREAD_RATIO)


def beyond_share(feature: FeatureNormalization, data: np.ndarray, tasks: int) -> float | None:
    """For data of one of the `tasks` tasks the statistics were computed over: how far the data
    lie beyond what such a share could hold, as a ratio (over 1: it cannot be part of that
    data). With the recorded range: the data's overshoot of it against RANGE_TOLERANCE of its
    width; else their second moment about the normaliser's centre, in its variances, against
    SHARE_SLACK x tasks."""
    s = feature.stats
    if "min" in s and "max" in s:
        lo, hi = np.asarray(s["min"], np.float64), np.asarray(s["max"], np.float64)
        width = hi - lo
        over = np.maximum(lo - data.min(0), data.max(0) - hi)
        live = width > 1e-6
        fixed = ~live & (over > 1e-3 * (1 + np.abs(hi)))  # constant over every task, not in this one
        if fixed.any():
            return float("inf")
        return float((np.maximum(over, 0)[live] / (RANGE_TOLERANCE * width[live])).max(initial=0.0))
    ckpt = feature.centre_spread()
    if ckpt is None:
        return None
    centre, spread = ckpt
    d_centre, d_spread = data.mean(0), data.std(0)
    live = spread > 1e-6
    fixed = ~live & (np.abs(d_centre - centre) > 1e-3 * (1 + np.abs(centre)))
    if fixed.any():
        return float("inf")
    second_moment = ((d_centre - centre) ** 2 + d_spread ** 2)[live] / spread[live] ** 2
    return float((second_moment / (SHARE_SLACK * tasks)).max(initial=0.0))


def check_normalization(ctx: DoctorContext) -> list[Finding]:
    """Normalisation as the deployed pipeline applies it, against this dataset: amplified
    dimensions, statistics from other data or swapped between features, statistics present but
    not applied, a mode other than the one trained with, inputs left raw, and outputs that come
    back in normalised units."""
    policy = ctx.policy if ctx.policy is not None else ctx.fresh_policy()
    trained = ctx.policy is not None
    source = "the checkpoint's normaliser" if trained else "the normaliser the pipeline builds from this dataset"
    features = {f.key: f for f in policy.normalization()}
    data = {k: _dataset_values(ctx, k) for k in features}
    # A checkpoint of several tasks examined on one of them: its statistics cover every task, so
    # this task's data may sit anywhere inside them, narrower; only data no task share could
    # hold is foreign.
    names = task_names(policy) if trained else []
    share_of = len(names) if len(names) > 1 and dataset_task_index(ctx, policy) is not None else None

    def foreign(feature, values) -> bool:
        if share_of is None:
            return _mismatched(stats_mismatch(feature, values))
        beyond = beyond_share(feature, values, share_of)
        return beyond is not None and beyond > 1

    findings, table = [], {}
    for key, feature in features.items():
        if not feature.applied:
            findings.append(Finding(
                "normalization", "error",
                f"{key}: the checkpoint holds {feature.mode} statistics for it, but the pipeline "
                f"as deployed does not apply them" + (" (its actions come back in normalised units)"
                                                      if key == "action" else " (it enters raw)"),
                {"key": key, "mode": feature.mode, "applied": False},
                "Build the pre/post-processing from the checkpoint (LeRobot: make_pre_post_processors "
                "with pretrained_path) and check the statistics are keyed by the feature names the "
                "policy uses; a lookup that misses must fail, not pass values through."))
        elif feature.trained_mode is not None and feature.trained_mode != feature.mode:
            findings.append(Finding(
                "normalization", "error",
                f"{key} is normalised with {feature.mode} at inference but the policy was trained "
                f"with {feature.trained_mode}", {"key": key, "deployed_mode": feature.mode,
                                                  "trained_mode": feature.trained_mode},
                "Load the normalisation mode and statistics saved with the checkpoint instead of "
                "the deployment config's defaults."))
        values = data[key]
        centre_spread = feature.centre_spread()
        if values is None or feature.mode == "identity" or centre_spread is None \
                or values.shape[-1] != centre_spread[0].shape[-1]:
            continue
        scale = feature.scale
        mismatch = stats_mismatch(feature, values)
        table[key] = {"mode": feature.mode, "applied": feature.applied, "scale": rounded(scale),
                      "std_in_dataset": rounded(values.std(0), 6),
                      "centre_shift_in_spreads": rounded(mismatch[0], 2) if mismatch else None,
                      "spread_ratio": rounded(mismatch[1], 2) if mismatch else None}
        # An action dimension that never moves has nothing to amplify; an input's float noise does.
        moving = values.std(0) > 0 if key == "action" else np.ones(len(scale), dtype=bool)
        for d in np.nonzero((scale > MAX_SCALE) & moving)[0]:
            findings.append(Finding(
                "normalization", "error",
                f"{key} dim {d} is scaled x{scale[d]:.3g} by {source}: a drift of 0.01 becomes "
                f"{0.01 * scale[d]:.3g} units",
                {"key": key, "dim": int(d), "scale": float(scale[d]),
                 "std_in_dataset": float(values[:, d].std())},
                "Floor the std used for normalisation (vlascope centres a dimension whose std is "
                "below `norm_floor`, 1e-2 by default, instead of dividing by it), or drop the "
                "dimension from the policy's inputs."))
        if share_of is not None:
            table[key]["beyond_one_task_share"] = rounded(beyond_share(feature, values, share_of), 3)
        if trained and mismatch is not None and foreign(feature, values):
            # Swapped: this feature's statistics fit another feature of the dataset instead.
            twin = next((other for other in features if other != key and data[other] is not None
                         and data[other].shape[-1] == values.shape[-1]
                         and not foreign(feature, data[other])),
                        None)
            evidence = {"key": key, "mode": feature.mode, "centre_shift_in_spreads": rounded(mismatch[0], 2),
                        "spread_ratio": rounded(mismatch[1], 2)}
            if share_of is not None:
                evidence |= {"tasks_trained": share_of, "beyond_one_task_share": table[key]["beyond_one_task_share"]}
            shift = ("a dimension constant in both sits at another value" if not np.isfinite(mismatch[0])
                     else f"centre {mismatch[0]:.1f} spreads off")
            if twin is not None:
                findings.append(Finding(
                    "normalization", "error",
                    f"the checkpoint's statistics for {key} are {twin}'s: they fit {twin} in this "
                    f"dataset, not {key} ({shift}, spread x{mismatch[1]:.1f})",
                    {**evidence, "matches": twin},
                    "The statistics were swapped between features when the checkpoint or its "
                    "processors were written: recompute them per feature name and reload."))
            else:
                findings.append(Finding(
                    "normalization", "warning" if key != "action" else "error",
                    f"{key}: the checkpoint's statistics come from other data ({shift}; this "
                    f"dataset's spread is x{mismatch[1]:.1f} theirs)" if share_of is None else
                    f"{key}: the checkpoint's statistics come from other data: this task's values "
                    f"lie x{evidence['beyond_one_task_share']} beyond what one of its {share_of} "
                    "tasks could hold under them",
                    evidence,
                    "Compute normalisation statistics on the data the policy is trained and "
                    "evaluated on, and save them with the checkpoint; a policy run with another "
                    "dataset's action statistics moves by the wrong amounts."))
    # Inputs the pipeline leaves raw while it normalises the others.
    first = ctx.episodes[0].obs
    state_inputs = [k for k in policy.spec.obs_keys if k in first and first[k].dtype != np.uint8]
    raw = [k for k in state_inputs if k not in features or features[k].mode == "identity"]
    if raw and len(raw) < len(state_inputs):
        findings.append(Finding(
            "normalization", "warning",
            f"{', '.join(raw)} enter(s) the policy unnormalised while its other state inputs are normalised",
            {"unnormalised_inputs": raw, "normalised": sorted(k for k in state_inputs if k not in raw)},
            "Add the feature to the normalisation map (LeRobot: normalization_mapping for its "
            "feature type; the stats must be in the checkpoint's processor)."))
    if trained:
        findings += _action_units(ctx, policy, features.get("action"))
    ctx.statistics["normaliser"] = table
    return findings or [ok("normalization", f"{source} fits this dataset: no dimension amplified "
                           f"more than x{MAX_SCALE:.0f}, statistics and modes consistent, outputs "
                           "in the dataset's units", {"per_key": table})]


def _action_units(ctx: DoctorContext, policy: ActionPolicy, feature) -> list[Finding]:
    """Do the predicted actions live in the dataset's units, or in normalised ones? Judged from
    the predictions alone, so it holds whatever the pipeline claims."""
    batch = sample_batch(ctx, policy, ctx.episodes, 256, ctx.seed)
    pred = predict(policy, batch, ctx.seed)[:, 0].astype(np.float64)
    truth = truth_of(policy, batch)[:, 0].astype(np.float64)
    data = _dataset_values(ctx, "action")
    candidates = {"meanstd": ((truth - data.mean(0)) / np.maximum(data.std(0), 1e-6))}
    lo, hi = data.min(0), data.max(0)
    candidates["minmax"] = 2 * (truth - lo) / np.maximum(hi - lo, 1e-6) - 1
    if feature is not None and feature.centre_spread() is not None:
        centre, spread = feature.centre_spread()
        candidates["checkpoint"] = (truth - centre) / np.maximum(spread, 1e-6)
    raw_error = float(np.abs(pred - truth).mean())
    normed = {name: float(np.abs(pred - t).mean()) for name, t in candidates.items()}
    best = min(normed, key=normed.get)
    distinct = float(np.abs(candidates[best] - truth).mean())  # how far normalised is from raw
    evidence = {"first_action_error_in_dataset_units": round(raw_error, 4),
                "error_if_predictions_are_normalised": {k: round(v, 4) for k, v in normed.items()},
                "normalised_vs_raw_difference": round(distinct, 4)}
    ctx.statistics["action_units"] = evidence
    if normed[best] < 0.5 * raw_error and distinct > 2 * normed[best]:
        return [Finding(
            "normalization", "error",
            f"the policy's actions come back in normalised units: they match the {best}-normalised "
            f"demo actions (error {normed[best]:.3f}) far better than the raw ones ({raw_error:.3f})",
            evidence,
            "The post-processing never unnormalises the action (a missing unnormaliser step, or "
            "statistics looked up under another key): apply the checkpoint's action statistics "
            "to the output before it reaches the robot.")]
    return []


def check_init_loss(ctx: DoctorContext) -> list[Finding]:
    policy = ctx.fresh_policy()
    batch = sample_batch(ctx, policy, ctx.episodes, warm_up_windows(ctx, policy), ctx.seed)
    try:
        expected = policy.zero_output_loss(batch)
    except NotProvided as exc:
        expected, why = None, str(exc)
    policy.train()
    torch.manual_seed(ctx.seed)
    with torch.no_grad():
        initial = float(np.mean([policy.loss(batch).item() for _ in range(4)]))
    losses, grad_norms = warm_up(policy, batch)
    ctx.cache["warm_policy"] = policy
    evidence = {"objective": policy.name, "loss_at_step_0": round(initial, 4),
                "expected_at_step_0": round(expected, 4) if expected is not None else f"unknown: {why}",
                "max_loss_first_30_steps": round(max(losses), 4), "loss_after_30_steps": round(losses[-1], 4),
                "grad_norm_at_step_0": round(grad_norms[0], 3)}
    reference = expected if expected is not None else initial
    if expected is not None:
        evidence["ratio"] = round(initial / expected, 2)
    curves = {"fresh policy, first 30 steps": (list(range(1, len(losses) + 1)), losses)}
    logged = list(read_loss_log(ctx.run_dir).items()) if ctx.run_dir else []
    if logged:
        evidence["run_first_logged_loss"] = {"step": logged[0][0], "loss": logged[0][1]}
        curves["the checkpoint's run"] = ([s for s, _ in logged], [v for _, v in logged])
    plot = plot_loss_curves(ctx, curves, "init_loss", expected, "loss at the start of training")
    findings = []
    if expected is not None and (not np.isfinite(initial) or initial > 3 * expected):
        findings.append(Finding(
            "init-loss", "error",
            f"loss at step 0 is {initial:.4g}, {initial / expected:.0f}x the {expected:.2f} this "
            f"objective gives for a zero output: the output layer does not start near zero",
            evidence,
            "Initialise the last layer of the action head to zero (or small), as vlascope's heads "
            "do; keep gradient-norm clipping (never clip the loss: it hides the exploding "
            "gradients instead of bounding them).", [plot]))
    elif not np.isfinite(max(losses)) or max(losses) > 10 * reference:
        findings.append(Finding(
            "init-loss", "error",
            f"the loss explodes in the first steps (max {max(losses):.4g} against {reference:.2f} "
            f"{'at a zero output' if expected is not None else 'at step 0'})", evidence,
            "Lower the learning rate or lengthen the warm-up; clip the gradient norm (1.0).", [plot]))
    if logged and logged[0][1] > 10 * reference:
        findings.append(Finding(
            "init-loss", "error",
            f"the checkpoint's run logged loss {logged[0][1]:.4g} at step {logged[0][0]}, over 10x "
            f"the {reference:.2f} a well-initialised policy starts from",
            evidence, "Check the initialisation of the run that produced the checkpoint, and that "
            "its gradient norm was clipped.", [plot]))
    text = (f"as expected for the objective ({expected:.3f})" if expected is not None
            else "(the objective's zero-output value is unknown)")
    return findings or [ok("init-loss", f"loss at step 0 is {initial:.3f}, {text}; no explosion in "
                           "the first 30 steps", evidence, [plot])]


def _module_of(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name


@torch.no_grad()
def _output_moves(policy: ActionPolicy, batch, module_names: list[str], seed: int) -> dict[str, float]:
    """Relative change of the predicted chunk when each module's parameters are perturbed."""
    base = torch.from_numpy(predict(policy, batch, seed))
    params = dict(policy.module().named_parameters())
    out = {}
    for module in module_names:
        names = [n for n in params if _module_of(n) == module]
        saved = [params[n].detach().clone() for n in names]
        for n in names:
            p = params[n]
            p.add_(torch.randn_like(p) * (0.1 * p.std().nan_to_num(0) + 1e-2))
        moved = torch.from_numpy(predict(policy, batch, seed))
        for n, s in zip(names, saved):
            params[n].copy_(s)
        out[module] = float((moved - base).norm() / (base.norm() + 1e-12))
    return out


def check_dead_parameters(ctx: DoctorContext) -> list[Finding]:
    policy, which = policy_under_test(ctx)
    batch = sample_batch(ctx, policy, ctx.episodes, 64, ctx.seed)
    if ctx.policy is not None:
        # On a copy moved by a few training steps: a checkpoint saved before training (zero
        # output layers) would otherwise show every upstream module as having no effect.
        policy = copy.deepcopy(policy)
        warm_up(policy, sample_batch(ctx, policy, ctx.episodes, warm_up_windows(ctx, policy), ctx.seed))
        which = "a copy of the checkpoint after 30 training steps"
    module = policy.module()
    named = list(module.named_parameters())
    trainable = [(n, p) for n, p in named if p.requires_grad]
    frozen = sum(p.numel() for n, p in named if not p.requires_grad)
    policy.train()
    module.zero_grad(set_to_none=True)
    torch.manual_seed(ctx.seed)
    for _ in range(2):
        policy.loss(batch).backward()
    no_grad = [n for n, p in trainable if p.grad is None]
    zero_grad = [n for n, p in trainable if p.grad is not None and not p.grad.abs().max() > 0]
    module.zero_grad(set_to_none=True)
    policy.eval()
    # A zero gradient is legitimate next to a zero-initialised partner (LoRA's A while B = 0):
    # perturb the whole module and see whether the output moves before calling it dead.
    suspects = sorted({_module_of(n) for n in no_grad + zero_grad})
    moves = _output_moves(policy, batch, suspects, ctx.seed) if suspects else {}
    dead_modules = [m for m in suspects if moves.get(m, 0.0) < 1e-6]
    sizes = {m: sum(p.numel() for n, p in trainable if _module_of(n) == m) for m in dead_modules}
    evidence = {"examined": which, "trainable_tensors": len(trainable),
                "trainable_parameters": sum(p.numel() for _, p in trainable),
                "frozen_parameters": frozen, "tensors_without_gradient": no_grad[:20],
                "tensors_with_zero_gradient": zero_grad[:20],
                "output_change_when_perturbed": {m: round(v, 6) for m, v in moves.items()}}
    missing_targets = [k for k in policy.spec.targets if k not in present_targets(policy.spec, ctx.episodes)]
    if dead_modules and missing_targets:
        # The loss without its auxiliary targets leaves their read-out untrained here, which
        # says nothing about the policy.
        total = sum(sizes.values())
        return [Finding(
            "dead-parameters", "warning",
            f"{total} trainable parameters in {len(dead_modules)} module(s) ({', '.join(dead_modules[:4])}) "
            f"receive no gradient here, but this dataset lacks the loss's auxiliary target(s) "
            f"{', '.join(missing_targets)}: a head that only they train is idle without them",
            {**evidence, "dead_modules": {m: sizes[m] for m in dead_modules}, "missing_targets": missing_targets},
            f"Run the doctor on data that records {', '.join(missing_targets)} to tell an idle target head "
            "from parameters outside the forward pass.")]
    if dead_modules:
        total = sum(sizes.values())
        return [Finding(
            "dead-parameters", "error",
            f"{total} trainable parameters in {len(dead_modules)} module(s) ({', '.join(dead_modules[:4])}"
            f"{'...' if len(dead_modules) > 4 else ''}) receive no gradient and do not change the "
            "output: they are not in the forward pass",
            {**evidence, "dead_modules": {m: sizes[m] for m in dead_modules}},
            "If these are LoRA adapters, they were created but never applied: wrap the modules "
            "the forward pass actually calls (peft.get_peft_model / inject_adapter_in_model on the "
            "backbone the policy uses, not on a copy), and check that perturbing them moves the "
            "output. Otherwise remove them; they only add optimiser state and checkpoint size.")]
    return [ok("dead-parameters", f"every trainable parameter of {which} reaches the output",
               evidence)]


def chunk_change(policy: ActionPolicy, batch: dict, base: torch.Tensor, seed: int) -> float:
    """How far the policy's chunks for `batch` lie from `base` (its chunks for the unchanged
    batch, flattened), on average, with the same sampling noise."""
    moved = torch.from_numpy(predict(policy, batch, seed)).flatten(1)
    return float((moved - base).norm(dim=-1).mean())


def check_conditioning(ctx: DoctorContext) -> list[Finding]:
    policy, which = policy_under_test(ctx)
    with torch.no_grad():
        return _conditioning(ctx, policy, which)


def _conditioning(ctx: DoctorContext, policy: ActionPolicy, which: str) -> list[Finding]:
    """Shuffle one input at a time across samples and measure how far the predicted chunk moves
    (same sampling noise), as a share of how far it moves when the whole observation is
    shuffled: an input that varies in the data but moves nothing never reaches the action."""
    batch = sample_batch(ctx, policy, ctx.episodes, 128, ctx.seed + 1)
    n = len(batch["action"])
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(ctx.seed)).to(batch["action"].device)
    base = torch.from_numpy(predict(policy, batch, ctx.seed)).flatten(1)

    def moved_by(keys) -> float:
        obs = {k: (v[perm] if k in keys else v) for k, v in batch["obs"].items()}
        return chunk_change(policy, {**batch, "obs": obs}, base, ctx.seed)

    keys = policy.spec.obs_keys
    whole = moved_by(keys)
    action_std = float(np.concatenate([e.actions for e in ctx.episodes]).std(0).mean())
    chunk_scale = action_std * base.shape[1] ** 0.5  # a chunk's norm at one action std per entry
    sensitivity, varies = {}, {}
    for key in keys:
        x = batch["obs"][key]
        varies[key] = bool((x.float() - x[perm].float()).abs().max() > 0)
        sensitivity[key] = moved_by([key]) / (whole + 1e-12)
    evidence = {"examined": which, "samples": n,
                "chunk_change_when_the_whole_observation_is_shuffled_in_action_std":
                    round(whole / (chunk_scale + 1e-12), 5),
                "sensitivity_per_input": {k: round(v, 4) for k, v in sensitivity.items()},
                "input_varies_in_data": varies}
    plot = plot_bars(ctx, sensitivity, "conditioning",
                     "change of the predicted chunk when one input is shuffled\n(share of the change when every input is)",
                     threshold=IGNORED_INPUT)
    findings = []
    constant = whole < 1e-3 * chunk_scale
    ignored = [k for k in sensitivity if varies[k] and (constant or sensitivity[k] < IGNORED_INPUT)]
    if constant:
        findings.append(Finding(
            "conditioning", "error",
            f"the policy's output does not depend on its observation: shuffling every input "
            f"across samples moves the chunk by {whole / (chunk_scale + 1e-12):.1e} action std",
            evidence,
            "Nothing of the observation reaches the action: look for an output layer whose weights "
            "are zero or whose input is detached, a condition multiplied away, a checkpoint "
            "whose weights failed to load, or one saved before any training step (zero-initialised "
            "output layers).", [plot]))
    elif ignored:
        findings.append(Finding(
            "conditioning", "error",
            f"the predicted actions ignore {', '.join(ignored)}: shuffling it across samples "
            f"moves the chunk by {max(sensitivity[k] for k in ignored):.1e} of what shuffling "
            "every input does",
            evidence,
            "That input never reaches the action: check the encoder's forward pass uses it "
            "(a branch computed but dropped, features multiplied by a zero gate, an image zeroed "
            "or replaced before the encoder, a frozen encoder whose output is constant). Only the "
            "other inputs condition the policy.", [plot]))
    weak = [k for k in sensitivity if varies[k] and k not in ignored and sensitivity[k] < WEAK_INPUT]
    if weak and ctx.policy is not None and not constant:
        # A note, not a fault: a task may not depend on the input (reach ignores the object).
        findings.append(Finding(
            "conditioning", "info",
            f"the trained policy barely reads {', '.join(weak)}: shuffling it moves the chunk by "
            f"{max(sensitivity[k] for k in weak):.1e} of what shuffling every input does", evidence,
            "Fine if the task does not depend on it. If this input carries what differs between "
            "scenes (an image, the goal), the policy replays demos instead of reading it: see "
            "observability and train-eval-gap.", [plot]))
    if not constant:  # an output that moves with nothing says nothing of the task either
        findings += _task_conditioning(ctx, policy, batch, base, whole, evidence, plot)
    findings += _condition_vectors(ctx, policy, batch, evidence, plot)
    return findings or [ok("conditioning", f"every varying input moves the predicted chunk "
                           f"(smallest share {min(sensitivity.values()):.3f} of the whole observation's)",
                           evidence, [plot])]


# Camera frames the deployed pipeline flips relative to training (a renderer's origin at the
# bottom-left, LeRobot's MetaWorld env flipping both axes, a mirrored USB camera) look like a
# different scene to the policy. If its predictions match the demos clearly better on flipped
# frames than on the frames it is given, the two pipelines disagree on orientation.
FLIPS = {"upside down": (2,), "mirrored left-right": (3,), "rotated 180 degrees": (2, 3)}
FLIP_GAIN = 0.8


def check_image_orientation(ctx: DoctorContext) -> list[Finding]:
    if ctx.policy is None:
        return [skipped("image-orientation", "needs a trained policy (--checkpoint or --adapter)")]
    images = [k for k, shape in ctx.policy.spec.obs_shapes.items() if len(shape) == 3]
    if not images:
        return [skipped("image-orientation", "the policy reads no image")]
    policy = ctx.policy
    batch = sample_batch(ctx, policy, ctx.episodes, 256, ctx.seed + 2)
    truth = truth_of(policy, batch)
    scale = np.concatenate([e.actions for e in ctx.episodes]).std(0) + 1e-6

    def error(obs) -> float:
        with torch.no_grad():
            return float((np.abs(predict(policy, {**batch, "obs": obs}, ctx.seed) - truth) / scale).mean())

    findings = []
    for key in images:
        errors = {"as given": error(batch["obs"])}
        for how, dims in FLIPS.items():  # (B, To, H, W, C): H is dim 2, W dim 3
            errors[how] = error({**batch["obs"], key: batch["obs"][key].flip(dims)})
        best = min(errors, key=errors.get)
        evidence = {"image": key, "samples": len(truth),
                    "open_loop_error_in_action_std": {k: round(v, 4) for k, v in errors.items()}}
        if best != "as given" and errors[best] < FLIP_GAIN * errors["as given"]:
            findings.append(Finding(
                "image-orientation", "error",
                f"{key}: the policy matches the demo actions better when the frames are {best} "
                f"(error {errors[best]:.3f} vs {errors['as given']:.3f} action std): its frames are "
                "oriented differently from those it was trained on", evidence,
                f"Make the pipeline that feeds the policy produce frames as training saw them: flip "
                f"{key} {best} where one of the two pipelines does not (the renderer's or camera "
                "driver's origin, an env wrapper that flips, a dataset converted with a flip), and "
                "re-check crops and resizes the same way."))
        else:
            findings.append(ok("image-orientation", f"{key}: the frames as given fit the policy best "
                               f"(error {errors['as given']:.3f}; flipped {min(v for k, v in errors.items() if k != 'as given'):.3f})",
                               evidence))
    return findings


# A frozen backbone whose pooled output barely differs between samples conditions nothing:
# the action expert can only read the proprio token (the "99.7% identical VLM embeddings" case).
BACKBONE_COSINE = 0.99


def _pairwise_cosine(vectors: torch.Tensor) -> torch.Tensor:
    unit = torch.nn.functional.normalize(vectors.float().flatten(1), dim=-1)
    cos = unit @ unit.T
    return cos[~torch.eye(len(cos), dtype=torch.bool, device=cos.device)]


# Windows on which a policy trained on several tasks is asked for each other task in turn.
TASK_SWAP_WINDOWS = 32


def _task_conditioning(ctx, policy: ActionPolicy, batch: dict, base: torch.Tensor, whole: float,
                       evidence: dict, plot: str) -> list[Finding]:
    """A policy trained on several tasks, asked for another task on the same frames: how far its
    chunk moves, as a share of shuffling the whole observation. A dataset holds one task, so the
    per-input shuffles above never vary the task; a policy that ignores it tells tasks apart by
    the scene alone, and tasks that share a scene get one behaviour."""
    names = task_names(policy)
    if len(names) < 2:
        return []
    own = int(batch["task_index"][0])
    others = [i for i in range(len(names)) if i != own]
    index = batch["task_index"]

    def moved_when_asked(batch_part, base_part, task_index) -> float:
        return chunk_change(policy, {**batch_part, "task_index": task_index}, base_part, ctx.seed) / (whole + 1e-12)

    pick = torch.randint(len(others), (len(index),), generator=torch.Generator().manual_seed(ctx.seed + 2))
    overall = moved_when_asked(batch, base, torch.tensor(others)[pick].to(index.device))
    few = torch.arange(min(len(index), TASK_SWAP_WINDOWS), device=index.device)
    part = subset(batch, few)
    per_task = {names[i]: moved_when_asked(part, base[:len(few)], torch.full_like(index[few], i)) for i in others}
    alike = sorted((t for t, v in per_task.items() if v < WEAK_INPUT), key=per_task.get)
    evidence["task"] = {"asked": names[own] if own < len(names) else own, "tasks_trained": len(names),
                        "asked_for_another_task": round(overall, 4),
                        "per_task": {t: round(v, 4) for t, v in sorted(per_task.items(), key=lambda kv: kv[1])}}
    if overall < IGNORED_INPUT:
        return [Finding(
            "conditioning", "error",
            f"trained on {len(names)} tasks, the policy ignores which one it is asked: asked for "
            f"another task on these frames, its chunk moves by {overall:.1e} of what shuffling the "
            "observation does", evidence,
            "The task (instruction embedding or task index) never reaches the action, so tasks are "
            "told apart by the scene alone and tasks that share a scene get one behaviour: check that "
            "the encoder reads the task input and that its embedding is not a constant.", [plot])]
    if alike and ctx.policy is not None:
        return [Finding(
            "conditioning", "info",
            f"asked for {', '.join(alike[:3])}{' and others' if len(alike) > 3 else ''} instead of "
            f"{names[own]} on these frames, the policy acts alike (chunk moved by at most "
            f"{max(per_task[t] for t in alike[:3]):.1e} of shuffling the observation)",
            evidence,
            "Fine where the tasks begin alike (reach and reach-wall). Where they should differ, the "
            "policy does not tell these instructions apart on this scene: compare the instructions' "
            "embeddings (a cosine near 1 is one condition for both) and the success of each task.",
            [plot])]
    return []


def _condition_vectors(ctx, policy: ActionPolicy, batch: dict, evidence: dict, plot: str) -> list[Finding]:
    """Where the policy exposes the vector its head reads (and its backbone's features): are
    they nearly the same for every sample?"""
    findings = []
    try:
        cond = policy.condition(batch["obs"], batch["task_index"]).float().flatten(1)
    except NotProvided as exc:
        evidence["condition_vector"] = f"not examined: {exc}"
        cond = None
    if cond is not None:
        offdiag = _pairwise_cosine(cond)
        relative_spread = float((cond - cond.mean(0)).norm(dim=-1).mean() / (cond.mean(0).norm() + 1e-12))
        evidence["condition_vector"] = {"mean_pairwise_cosine": round(float(offdiag.mean()), 4),
                                        "relative_spread": round(relative_spread, 4)}
        if float(offdiag.mean()) > 0.99 and relative_spread < 0.02:
            findings.append(Finding(
                "conditioning", "warning",
                f"condition vectors are nearly identical across samples (mean cosine "
                f"{float(offdiag.mean()):.4f}, spread {100 * relative_spread:.1f}% of their norm)",
                evidence,
                "The head sees an almost constant condition, so it can only learn the average "
                "action. A frozen backbone often does this: normalise or project its features "
                "(LayerNorm + a trained projector), fine-tune it (LoRA), or pool more informative "
                "tokens.", [plot]))
    try:
        pooled, frozen = policy.backbone_features(batch["obs"], batch["task_index"])
    except NotProvided:
        return findings
    cosine = float(_pairwise_cosine(pooled).mean())
    evidence["backbone"] = {"frozen": frozen, "mean_pairwise_cosine_of_pooled_tokens": round(cosine, 4)}
    if frozen and cosine > BACKBONE_COSINE:
        # The root cause of near-identical condition vectors, so it replaces that symptom.
        findings = [Finding(
            "conditioning", "warning",
            f"the frozen backbone gives nearly the same features for every sample (mean cosine "
            f"{cosine:.4f} of its pooled tokens): the action expert is left with the proprio input",
            evidence,
            "Let the backbone adapt (backbone_mode: lora or full), or read its per-token outputs "
            "through a trained projector with LayerNorm rather than a pooled vector; check the "
            "images reach it at a resolution where the scene differences survive.", [plot])]
    return findings


def check_policy_observability(ctx: DoctorContext) -> list[Finding]:
    """The observability check asked of what the trained policy's head reads: does its condition
    vector tell where each demo goes? Where the inputs carry it (a goal in a few pixels of the
    frame) but the encoder did not learn to extract it, the head averages the demos as if the
    input were missing."""
    if ctx.policy is None:
        return [skipped("policy-observability", "needs --checkpoint")]
    if ctx.quick:
        return [skipped("policy-observability", "--quick")]
    if len(ctx.episodes) < 3:
        return [skipped("policy-observability", f"needs at least 3 demos, the dataset has {len(ctx.episodes)}")]
    policy = ctx.policy
    windows = sample_batch(ctx, policy, ctx.episodes)
    try:
        with torch.no_grad():
            cond = torch.cat([policy.condition(part["obs"], part["task_index"]).float().flatten(1).cpu()
                              for _, part in in_parts(windows)])
    except NotProvided as exc:
        return [skipped("policy-observability", str(exc))]
    share = unexplained_by(ctx.episodes, standardised(cond.numpy()), ctx.seed)
    shares = observability_shares(ctx)
    input_share, references, best = shares.share, shares.references, shares.best
    evidence = {"condition_vector": round(share, 3), "policy_inputs": round(input_share, 3),
                "references": {k: round(v, 3) for k, v in references.items()}}
    plot = plot_bars(ctx, {"condition vector": share, "policy inputs": input_share, **references},
                     "policy_observability", "share of where each demo goes left unexplained\n"
                     "(nearest frame of another demo vs a random one)", threshold=UNEXPLAINED_LIMIT,
                     flagged="above")
    if shares.leaves_unexplained(share):
        missing = shares.missing
        if missing and missing in policy.spec.targets:
            remedy = (f"The policy already trains with `{missing}` as an auxiliary target, and its encoder "
                      "still does not extract it well enough: weight that target more (`aux_weight`), "
                      "train longer, or give it larger frames.")
        else:
            target = f" (`--aux-keys {missing}`: a training target, not an input)" if missing else ""
            remedy = (f"Train with an auxiliary target on what is missing{target}, so the encoder must "
                      "locate it, or give it larger frames.")
        return [Finding(
            "policy-observability", "warning",
            f"the trained policy's condition vector leaves {100 * share:.0f}% of where each demo goes "
            f"unexplained ({best}: {100 * references[best]:.0f}%): its head cannot tell the demos' "
            "destinations apart", evidence,
            "The head reads what the encoder extracted; where the inputs hold the destination (see "
            f"observability), the encoder has not learned to find it. {remedy}", [plot])]
    return [ok("policy-observability", f"the trained policy's condition vector tells where each demo "
               f"goes ({100 * share:.0f}% unexplained; {best}: {100 * references[best]:.0f}%)",
               evidence, [plot])]


def check_head_isolation(ctx: DoctorContext) -> list[Finding]:
    if ctx.quick:
        return [skipped("head-isolation", "--quick")]
    policy = ctx.fresh_policy()
    head, cond_dim = policy.action_head()
    head = copy.deepcopy(head)
    spec = policy.spec
    steps, batch = ctx.head_isolation_steps or (1500 if ctx.device.type == "cpu" else 3000), 100
    # Targets in [-1, 1] like min-max normalised actions (a diffusion head clamps to that range).
    result = fit_synthetic(head, cond_dim, (spec.horizon, spec.action_dim), n_conditions=100,
                           steps=steps, batch_size=batch, lr=1e-3, seed=ctx.seed, device=str(ctx.device),
                           targets="uniform", max_seconds=OVERFIT_SECONDS[ctx.device.type])
    curve_steps, losses = zip(*result["loss_curve"])
    plot = plot_loss_curves(ctx, {"head alone, synthetic pairs": (list(curve_steps), list(losses))},
                            "head_isolation", title="head isolation: 100 random conditions -> random chunks")
    evidence = {"head": type(head).__name__, "conditions": 100, "cond_dim": cond_dim,
                "target_shape": [spec.horizon, spec.action_dim], "steps": result["steps"],
                "first_loss": round(result["first_loss"], 4), "final_loss": round(result["final_loss"], 4),
                "relative_error_of_samples": round(result["relative_error"], 4),
                "seconds": round(result["seconds"], 1)}
    if result["relative_error"] > ISOLATION_RELATIVE_ERROR:
        return [Finding(
            "head-isolation", "error",
            f"the action head alone cannot learn a fixed map from 100 conditions to chunks: its "
            f"samples miss by {result['relative_error']:.2f} target std (loss {result['final_loss']:.3f})",
            evidence,
            "The fault is in the head, not the data or encoder: check its objective and sampler "
            "agree (same time convention and parameterisation), its width, and its learning rate "
            "and schedule.", [plot])]
    return [ok("head-isolation", f"the head alone fits 100 random pairs (samples within "
               f"{result['relative_error']:.3f} target std, loss {result['final_loss']:.3f})",
               evidence, [plot])]


def open_loop_errors(truth: np.ndarray, pred: np.ndarray, action_std: np.ndarray) -> dict:
    """truth, pred: (N, horizon, A). Per-dimension errors, relative to the data's action std."""
    first_t, first_p = truth[:, 0], pred[:, 0]
    mae_first = np.abs(first_p - first_t).mean(0)
    mae_chunk = np.abs(pred - truth).mean((0, 1))
    moving = action_std >= 1e-4
    rel = np.where(moving, mae_first / np.maximum(action_std, 1e-4), np.nan)
    var = first_t.var(0)
    r2 = np.where(var > 1e-10, 1 - ((first_p - first_t) ** 2).mean(0) / np.maximum(var, 1e-10), np.nan)
    std_ratio = np.where(first_t.std(0) > 1e-5, first_p.std(0) / np.maximum(first_t.std(0), 1e-5), np.nan)
    return {"first_step_mae": mae_first, "chunk_mae": mae_chunk, "relative_error": rel,
            "mean_relative_error": float(np.nanmean(rel)) if moving.any() else 0.0,
            "r2": r2, "std_ratio": std_ratio}


def _rounded(metrics: dict) -> dict:
    return {k: rounded(v) for k, v in metrics.items()}


def check_overfit(ctx: DoctorContext) -> list[Finding]:
    """Can the pipeline memorise 5 demos with its own loss and optimiser? Judged by open-loop
    action error, not by the loss."""
    if ctx.quick:
        return [skipped("overfit", "--quick")]
    n = ctx.overfit_demos
    if len(ctx.episodes) < n:
        return [skipped("overfit", f"needs {n} demos, the dataset has {len(ctx.episodes)}")]
    demos, held = ctx.episodes[:n], ctx.episodes[n:2 * n]
    policy = ctx.fresh_policy(demos)
    windows = sample_batch(ctx, policy, demos)
    count = len(windows["action"])
    g = torch.Generator().manual_seed(ctx.seed)
    batch_size = min(OVERFIT_BATCH, count)

    def batch_of(step):
        return subset(windows, torch.randint(count, (batch_size,), generator=g).to(ctx.device))

    torch.manual_seed(ctx.seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    budget = ctx.overfit_steps or OVERFIT_STEPS
    allowed = OVERFIT_SECONDS[ctx.device.type]
    losses, _ = optimise(policy, batch_of, budget, allowed, min_steps=int(OVERFIT_MIN_SHARE * budget))
    seconds = time.perf_counter() - start
    if len(losses) <= PACE_STEPS < budget and np.isfinite(losses[-1]):
        per_step = (time.process_time() - cpu_start) / len(losses)
        reason = (f"a step on {n} demos takes {per_step:.1f} CPU seconds here, so the doctor's budget "
                  f"({allowed:.0f} CPU seconds) reaches about {int(allowed / per_step)} of the {budget} "
                  "steps the test needs; run the doctor on a GPU (--device cuda) for a verdict")
        return [Finding("overfit", "info", f"not run to a verdict: {reason}",
                        {"skipped": reason, "cpu_seconds_per_step": round(per_step, 2), "steps_needed": budget})]
    ctx.cache["overfit_policy"] = policy
    final_loss = float(np.mean(losses[-25:]))
    action_std = np.concatenate([e.actions for e in demos]).std(0)
    train_batch = sample_batch(ctx, policy, demos, 2000, ctx.seed)
    on_train = open_loop_errors(truth_of(policy, train_batch), predict(policy, train_batch, ctx.seed),
                                action_std)
    evidence = {"demos": n, "steps": len(losses), "batch_size": batch_size, "seconds": round(seconds, 1),
                "stopped_by_time": bool(len(losses) < budget and np.isfinite(losses[-1])),
                "final_loss": round(final_loss, 5), "train": _rounded(on_train)}
    if held:
        held_batch = sample_batch(ctx, policy, held, 2000, ctx.seed)
        evidence["held_out"] = _rounded(open_loop_errors(
            truth_of(policy, held_batch), predict(policy, held_batch, ctx.seed), action_std))
    every = max(len(losses) // 100, 1)
    plot = plot_loss_curves(ctx, {f"overfit {n} demos": (list(range(0, len(losses), every)), losses[::every])},
                            "overfit_loss", title=f"overfitting {n} demos ({policy.name})")
    rel = on_train["mean_relative_error"]
    if rel > OVERFIT_RELATIVE_ERROR and evidence["stopped_by_time"]:
        # Cut short by the budget: slow, not shown to be unable.
        return [Finding(
            "overfit", "warning",
            f"the pipeline did not overfit {n} demos within the doctor's budget "
            f"({OVERFIT_SECONDS[ctx.device.type]:.0f} CPU seconds, {len(losses)} of {budget} "
            f"steps): its actions still miss by {rel:.2f} action std on the demos it trained on",
            evidence,
            "Run the doctor on a GPU (--device cuda) or on a smaller configuration of the policy to "
            "finish the test; a pipeline that never gets below 0.1 action std on 5 demos has a bug "
            "upstream of data quantity.", [plot])]
    if rel > OVERFIT_RELATIVE_ERROR:
        return [Finding(
            "overfit", "error",
            f"the pipeline cannot overfit {n} demos: after {len(losses)} steps its actions miss by "
            f"{rel:.2f} action std on the demos it trained on (final loss {final_loss:.4f})",
            evidence,
            "A pipeline that cannot memorise 5 demos has a bug upstream of data quantity: look at "
            "the failing checks above (conditioning, dead parameters, normalisation, head "
            "isolation). A low flow/diffusion loss is not a low action error: judge by this "
            "number.", [plot])]
    return [ok("overfit", f"the pipeline overfits {n} demos in {len(losses)} steps: open-loop error "
               f"{rel:.3f} action std (loss {final_loss:.4f})", evidence, [plot])]


def held_out_episodes(ctx: DoctorContext) -> tuple[list, str]:
    """Demos the checkpoint never trained on: the dataset's episodes outside the ones its
    training recorded, else expert rollouts from evaluation seeds (--task)."""
    trained_on = ctx.policy.training_info().get("episodes") if ctx.policy is not None else None
    if trained_on is not None:
        seen = set(int(i) for i in trained_on)
        rest = [e for i, e in enumerate(ctx.episodes) if i not in seen]
        if rest:
            return rest, "dataset episodes outside the checkpoint's training set"
    rollouts = ctx.cache.get("held_out_episodes") or []
    if rollouts:
        return rollouts, f"expert rollouts of {ctx.task} from evaluation seeds"
    return [], ""


def training_episodes(ctx: DoctorContext, policy: ActionPolicy) -> list:
    """The dataset's episodes the checkpoint trained on (all, where it does not record them)."""
    trained_on = policy.training_info().get("episodes")
    seen = None if trained_on is None else {int(i) for i in trained_on}
    return [e for i, e in enumerate(ctx.episodes) if seen is None or i in seen] or ctx.episodes


def mean_error(policy: ActionPolicy, batch: dict, action_std: np.ndarray, seed: int) -> float:
    """First-action error of the policy's chunks on `batch`, in action std, rounded for a report."""
    errors = open_loop_errors(truth_of(policy, batch), predict(policy, batch, seed), action_std)
    return round(errors["mean_relative_error"], 4)


def per_episode_errors(ctx: DoctorContext, policy: ActionPolicy, episodes: list,
                       action_std: np.ndarray) -> dict[str, float]:
    """mean_error over every window of each episode, by name (rollouts have none: numbered)."""
    return {ep.name or f"rollout {i}": mean_error(policy, sample_batch(ctx, policy, [ep]), action_std, ctx.seed)
            for i, ep in enumerate(episodes)}


def check_open_loop(ctx: DoctorContext) -> list[Finding]:
    """open-loop and mode-collapse: the checkpoint's predictions against the demos, on its
    training data and on held-out episodes (per episode)."""
    if ctx.policy is None:
        return [skipped("open-loop", "needs --checkpoint"), skipped("mode-collapse", "needs --checkpoint")]
    policy = ctx.policy
    action_std = np.concatenate([e.actions for e in ctx.episodes]).std(0)
    held, held_source = held_out_episodes(ctx)
    train_eps = training_episodes(ctx, policy)
    sets = {"train": train_eps}
    if held:
        sets["held_out"] = held
    results = {}
    for name, episodes in sets.items():
        batch = sample_batch(ctx, policy, episodes, 2000 if not ctx.quick else 500, ctx.seed)
        truth = truth_of(policy, batch)
        pred = predict(policy, batch, ctx.seed)
        results[name] = open_loop_errors(truth, pred, action_std)
        ctx.arrays[f"{name}_truth"], ctx.arrays[f"{name}_predicted"] = truth, pred
    per_episode = per_episode_errors(ctx, policy, held[:20], action_std)
    # One whole demo, step by step, for the time-series plot.
    demo = train_eps[0]
    demo_batch = sample_batch(ctx, policy, [demo])
    demo_truth = truth_of(policy, demo_batch)
    demo_pred = predict(policy, demo_batch, ctx.seed)
    ctx.arrays["demo0_truth"], ctx.arrays["demo0_predicted"] = demo_truth, demo_pred
    train = results["train"]
    truth, pred = ctx.arrays["train_truth"][:, 0], ctx.arrays["train_predicted"][:, 0]
    plots = [plot_timeseries(ctx, demo_truth[:, 0], demo_pred[:, 0], "timeseries",
                             f"{demo.name}, first action of each chunk"),
             plot_scatter(ctx, truth, pred, np.nan_to_num(train["r2"]).tolist(), "scatter"),
             plot_error_histograms(ctx, pred - truth, "error_histograms"),
             plot_action_histograms(ctx, truth, pred, "predicted_action_histograms")]
    evidence = {name: _rounded(m) for name, m in results.items()}
    if held:
        evidence["held_out_source"] = held_source
        evidence["held_out_per_episode"] = per_episode
    else:
        evidence["held_out"] = ("none: the checkpoint trained on every episode of the dataset; pass "
                                "--task to roll the expert out on evaluation seeds")
    findings = []
    rel = train["mean_relative_error"]
    if rel > TRAIN_RELATIVE_ERROR:
        findings.append(Finding(
            "open-loop", "warning",
            f"on its own training demos the policy's first action misses by {rel:.2f} action std "
            "on average", evidence,
            "The policy has not fitted its data: train longer, check the overfit test, and "
            "compare per-dimension errors to find the dims it gets wrong.", plots))
    if "held_out" in results:
        held_rel = results["held_out"]["mean_relative_error"]
        if held_rel > TRAIN_RELATIVE_ERROR and held_rel > 2 * rel:
            findings.append(Finding(
                "open-loop", "warning",
                f"open-loop error is {held_rel:.2f} action std on held-out demos against {rel:.2f} "
                "on training demos: the policy does not generalise beyond its training episodes",
                evidence, "Collect more diverse demos, add observation-noise augmentation, or use "
                "a smaller model / stronger regularisation.", plots))
    if not findings:
        findings.append(ok("open-loop", f"first-action error {rel:.3f} action std on training demos"
                           + (f", {results['held_out']['mean_relative_error']:.3f} held out"
                              if "held_out" in results else ""), evidence, plots))
    findings += _mode_collapse(train, action_std, plots[1:2])
    return findings


# At most this many of a run's checkpoints are compared (evenly spaced, the last included).
MAX_CHECKPOINTS = 8
# The held-out error of the last checkpoint against the run's best, beyond which the run is
# past its best point.
HELD_OUT_RISE = 1.25


def check_held_out_curve(ctx: DoctorContext) -> list[Finding]:
    """Held-out action error at each checkpoint of the run: where validation loss would have
    said to stop. LeRobot's training loop has no validation split; this is one, after the fact."""
    if ctx.policy is None:
        return [skipped("held-out-curve", "needs --checkpoint")]
    held, held_source = held_out_episodes(ctx)
    if not held:
        return [skipped("held-out-curve", "no held-out episodes: train on a subset of the dataset's "
                        "episodes (recorded in the checkpoint), or pass --task for expert rollouts")]
    checkpoints = ctx.policy.run_checkpoints()
    if len(checkpoints) < 2:
        return [skipped("held-out-curve", f"the run saved {len(checkpoints)} checkpoint(s); "
                        "the curve needs two or more")]
    pick = np.unique(np.linspace(0, len(checkpoints) - 1, min(MAX_CHECKPOINTS, len(checkpoints))).round().astype(int))
    action_std = np.concatenate([e.actions for e in ctx.episodes]).std(0)
    train_eps = training_episodes(ctx, ctx.policy)
    windows, per_episode_count = (256, 5) if ctx.quick else (2000, 10)
    rows = []
    for i in pick:
        step, load = checkpoints[i]
        policy = load()
        rows.append({"step": step,
                     "train": mean_error(policy, sample_batch(ctx, policy, train_eps, windows, ctx.seed),
                                         action_std, ctx.seed),
                     "held_out": mean_error(policy, sample_batch(ctx, policy, held, windows, ctx.seed),
                                            action_std, ctx.seed),
                     "held_out_per_episode": per_episode_errors(ctx, policy, held[:per_episode_count],
                                                                action_std)})
    steps = [r["step"] for r in rows]
    plot = plot_loss_curves(ctx, {"training episodes": (steps, [r["train"] for r in rows]),
                                  "held-out episodes": (steps, [r["held_out"] for r in rows])},
                            "held_out_curve", title="first-action error per checkpoint",
                            ylabel="error (action std)")
    best = min(rows, key=lambda r: r["held_out"])
    last = rows[-1]
    evidence = {"held_out_source": held_source, "held_out_episodes": len(held),
                "checkpoints_in_run": len(checkpoints), "per_checkpoint": rows, "best_step": best["step"]}
    if best is not last and last["held_out"] > HELD_OUT_RISE * best["held_out"]:
        return [Finding(
            "held-out-curve", "warning",
            f"held-out error rose from {best['held_out']:.3f} action std at step {best['step']} to "
            f"{last['held_out']:.3f} at step {last['step']} (training episodes: {best['train']:.3f} "
            f"to {last['train']:.3f}): the run went past its best point", evidence,
            f"Deploy the step-{best['step']} checkpoint, or train with more demos or stronger "
            "regularisation; confirm closed-loop, since open-loop error ranks checkpoints only "
            "roughly.", [plot])]
    return [ok("held-out-curve", f"held-out error {last['held_out']:.3f} action std at the last "
               f"checkpoint (step {last['step']}), best {best['held_out']:.3f} at step {best['step']}",
               evidence, [plot])]


def _mode_collapse(metrics: dict, action_std: np.ndarray, plots: list[str]) -> list[Finding]:
    ratio, r2 = metrics["std_ratio"], metrics["r2"]
    evidence = {"std_ratio_pred_over_truth": rounded(ratio, 3), "r2": rounded(r2, 3),
                "action_std": rounded(action_std)}
    collapsed = [d for d in range(len(ratio)) if action_std[d] >= 1e-4 and np.isfinite(ratio[d])
                 and ratio[d] < 0.5 and (not np.isfinite(r2[d]) or r2[d] < 0.5)]
    if collapsed:
        return [Finding(
            "mode-collapse", "error",
            f"action dim(s) {collapsed} predict a near-constant value: prediction std is "
            f"{', '.join(f'{ratio[d]:.2f}' for d in collapsed)} of the truth's, R² "
            f"{', '.join(f'{r2[d]:.2f}' for d in collapsed)}",
            evidence,
            "Typical causes: that dimension's range is small next to the others and the loss is "
            "an unweighted MSE (normalise actions per dimension, or weight the loss), a tiny "
            "normaliser std, or an input the dimension depends on that the encoder ignores "
            "(see conditioning).", plots)]
    return [ok("mode-collapse", "every moving action dimension varies like the truth "
               f"(std ratio >= {np.nanmin(ratio):.2f})", evidence, plots)]


MODEL_CHECKS = [check_normalization, check_init_loss, check_dead_parameters, check_conditioning,
                check_image_orientation, check_policy_observability,
                check_head_isolation, check_overfit, check_open_loop, check_held_out_curve]
