"""Checks on the dataset alone: they need no model and run in seconds."""

from __future__ import annotations

import numpy as np

from vlascope.doctor.context import DoctorContext, float_obs_keys
from vlascope.doctor.findings import Finding, ok, rounded
from vlascope.doctor.plots import plot_action_histograms, plot_initial_states

# A dimension that moves less than this (in the data's own units) is pinned. MetaWorld's
# positions are metres and its actions live in [-1, 1], so 1e-4 is far below any real motion.
PINNED_RANGE = 1e-4
# All demos "start from one state" when no initial-state dimension spreads more than this.
ONE_STATE_SPREAD = 1e-3
# Per-dimension std ratio above which an unweighted MSE is dominated by the widest dimensions.
IMBALANCE_RATIO = 10.0


def check_nan_in_data(ctx: DoctorContext) -> list[Finding]:
    hits, count = [], 0
    for ep in ctx.dataset.episodes:
        arrays = {"actions": ep.actions} | {f"obs/{k}": v for k, v in ep.obs.items()
                                            if v.dtype != np.uint8}
        for key, arr in arrays.items():
            bad = ~np.isfinite(arr.reshape(len(arr), -1))
            if bad.any():
                steps, dims = np.nonzero(bad)
                count += int(bad.sum())
                for s, d in list(zip(steps, dims))[:5]:
                    hits.append({"demo": ep.name, "key": key, "step": int(s), "dim": int(d),
                                 "value": str(arr.reshape(len(arr), -1)[s, d])})
    if not hits:
        return [ok("nan-in-data", "no NaN or inf in actions or observations",
                   {"frames": ctx.dataset.num_frames})]
    demos = sorted({h["demo"] for h in hits})
    first = hits[0]
    return [Finding(
        "nan-in-data", "error",
        f"{count} non-finite value(s) in {len(demos)} demo(s), first at {first['demo']}/"
        f"{first['key']} step {first['step']} dim {first['dim']} ({first['value']})",
        {"non_finite_values": count, "demos": demos, "locations": hits[:20],
         "model_checks_ran_without": demos},
        "One NaN turns every loss and gradient it touches into NaN. Repair or drop these demos "
        "(look at the recorder or the conversion that wrote them); the model checks below ran "
        "without them.")]


def initial_observations(episodes) -> dict[str, np.ndarray]:
    return {k: np.stack([e.obs[k][0] for e in episodes]) for k in float_obs_keys(episodes)}


def check_initial_state_diversity(ctx: DoctorContext) -> list[Finding]:
    episodes = ctx.episodes
    init = initial_observations(episodes)
    per_key = {k: {"std": rounded(v.std(0)), "range": rounded(v.max(0) - v.min(0))}
               for k, v in init.items()}
    spread = max(float((v.max(0) - v.min(0)).max()) for v in init.values())
    features = np.concatenate([v for v in init.values()], axis=1)
    distinct = len({tuple(np.round(f, 3)) for f in features})
    plot = plot_initial_states(ctx, init, None, "initial_states")
    evidence = {"demos": len(episodes), "distinct_initial_states_at_1mm": distinct,
                "largest_initial_range": round(spread, 6), "per_key": per_key}
    collection = ctx.dataset.attrs.get("collection")
    if isinstance(collection, dict) and "fixed_init" in collection:
        evidence["collected_with_fixed_init"] = bool(collection["fixed_init"])
    ctx.statistics["initial_states"] = per_key
    if len(episodes) > 1 and spread < ONE_STATE_SPREAD:
        return [Finding(
            "initial-state-diversity", "error",
            f"all {len(episodes)} demos start from one initial state (no initial-state dimension "
            f"varies by more than {spread:.1e})",
            evidence,
            "A policy trained on one scene memorises it: training loss looks excellent and "
            "closed-loop success from any other state is near 0%. Collect demos from randomised "
            "initial states (`vlascope collect` without --fixed-init).", [plot])]
    if len(episodes) >= 10 and distinct < len(episodes) / 2:
        return [Finding(
            "initial-state-diversity", "warning",
            f"only {distinct} distinct initial states among {len(episodes)} demos",
            evidence, "Repeated initial states add little: collect demos from new seeds.", [plot])]
    return [ok("initial-state-diversity",
               f"{distinct} distinct initial states among {len(episodes)} demos", evidence, [plot])]


def check_near_constant_action_dim(ctx: DoctorContext) -> list[Finding]:
    actions = np.concatenate([e.actions for e in ctx.episodes])
    std, rng = actions.std(0), actions.max(0) - actions.min(0)
    plot = plot_action_histograms(ctx, actions, None, "action_histograms")
    evidence = {"std": rounded(std), "range": rounded(rng), "min": rounded(actions.min(0)),
                "max": rounded(actions.max(0))}
    pinned = [int(d) for d in np.nonzero(rng < PINNED_RANGE)[0]]
    moving = std[rng >= PINNED_RANGE]
    barely = [int(d) for d in np.nonzero((rng >= PINNED_RANGE) & (std < 0.01 * np.median(moving)))[0]] \
        if len(moving) else []
    findings = []
    for d in pinned:
        findings.append(Finding(
            "near-constant-action-dim", "warning",
            f"action dim {d} never moves: it is {actions[0, d]:.4g} in every frame",
            {**evidence, "dim": d},
            "If this degree of freedom matters for the task (a gripper that must close), the "
            "recorder or the conversion lost it and the policy can never learn it: fix the data. "
            "If the task never uses it, the policy will simply copy the constant; nothing to do.",
            [plot]))
    for d in barely:
        findings.append(Finding(
            "near-constant-action-dim", "warning",
            f"action dim {d} barely moves: std {std[d]:.2g} against a median of {np.median(moving):.2g}",
            {**evidence, "dim": d},
            "A nearly constant dimension is where partial mode collapse starts: check that the "
            "recorded values are the commanded ones, and weight or normalise it (min-max "
            "normalisation maps its range to [-1, 1]).", [plot]))
    return findings or [ok("near-constant-action-dim", "every action dimension moves", evidence, [plot])]


def check_action_scale_imbalance(ctx: DoctorContext) -> list[Finding]:
    actions = np.concatenate([e.actions for e in ctx.episodes])
    std = actions.std(0)
    moving = np.nonzero(actions.max(0) - actions.min(0) >= PINNED_RANGE)[0]
    if len(moving) < 2:
        return [ok("action-scale-imbalance", "fewer than two moving action dimensions")]
    var = std[moving] ** 2
    ratio = float(std[moving].max() / std[moving].min())
    # What the pipeline's normaliser makes of it: the spread the loss actually sees per dim.
    policy = ctx.policy if ctx.policy is not None else ctx.fresh_policy()
    normed_ratio, mode = None, None
    if policy is not None:
        norm = policy.normalizer
        mode = norm.modes.get("action")
        scale = norm.stat("action", "scale").cpu().numpy().astype(np.float64)
        normed = std[moving] * scale[moving]
        normed_ratio = float(normed.max() / normed.min())
    evidence = {"std_per_dim": rounded(std), "largest_to_smallest_std": round(ratio, 2),
                "unweighted_mse_share_per_dim": rounded(var / var.sum(), 3),
                "moving_dims": [int(d) for d in moving], "action_normalisation": mode,
                "normalised_std_ratio": None if normed_ratio is None else round(normed_ratio, 2)}
    seen = normed_ratio if normed_ratio is not None else ratio
    if seen > IMBALANCE_RATIO:
        small = int(moving[np.argmin(std[moving] if normed_ratio is None else normed)])
        share = float(var.min() / var.sum())
        where = "after normalisation" if normed_ratio is not None else "in raw units"
        return [Finding(
            "action-scale-imbalance", "warning",
            f"action dims differ in spread by {seen:.0f}x {where}: an unweighted MSE gives dim "
            f"{small} {100 * share:.2g}% of the loss, so it can stay near-constant while the loss "
            "looks fine", evidence,
            "Normalise actions per dimension (min-max or mean-std with a std floor) or weight "
            "the loss per dimension; check open-loop R² of the small dimension.")]
    return [ok("action-scale-imbalance",
               f"largest/smallest action std {ratio:.1f}x raw"
               + ("" if normed_ratio is None else f", {normed_ratio:.1f}x as the loss sees it"),
               evidence)]


def dataset_statistics(ctx: DoctorContext) -> dict:
    episodes = ctx.episodes
    out = {"path": str(ctx.dataset.path), "task": ctx.dataset.task,
           "demos": len(ctx.dataset.episodes), "finite_demos": len(episodes),
           "episode_length": {"min": int(min(map(len, episodes))), "max": int(max(map(len, episodes))),
                              "mean": float(np.mean([len(e) for e in episodes]))}}
    arrays = {"action": np.concatenate([e.actions for e in episodes])}
    arrays |= {k: np.concatenate([e.obs[k] for e in episodes]) for k in float_obs_keys(episodes)}
    out["per_key"] = {k: {"mean": rounded(v.mean(0)), "std": rounded(v.std(0), 6),
                          "min": rounded(v.min(0)), "max": rounded(v.max(0))} for k, v in arrays.items()}
    return out


DATA_CHECKS = [check_nan_in_data, check_initial_state_diversity, check_near_constant_action_dim,
               check_action_scale_imbalance]
