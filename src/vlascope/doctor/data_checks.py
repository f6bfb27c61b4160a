"""Checks on the dataset alone: they need no model and run in seconds."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from vlascope.doctor.context import DoctorContext, camera_keys, float_obs_keys, state_mirroring_actions
from vlascope.doctor.episode_checks import EPISODE_CHECKS
from vlascope.doctor.findings import Finding, ok, rounded, skipped
from vlascope.doctor.plots import plot_action_histograms, plot_bars, plot_initial_states
from vlascope.policies.interface import NotProvided

# A dimension that moves less than this (in the data's own units) is pinned. MetaWorld's
# positions are metres and its actions live in [-1, 1], so 1e-4 is far below any real motion.
PINNED_RANGE = 1e-4
# All demos "start from one state" when no initial-state dimension spreads more than this.
ONE_STATE_SPREAD = 1e-3
# The same for first camera frames: they show different scenes when at least ONE_SCENE_VALUES
# pixel values (in [0, 1]) range over more than ONE_SCENE_PIXEL_RANGE across demos. A small object
# moved changes a few pixels by far more than that; lossy video (LeRobot's yuv420p H.264) moves
# pixels of one scene by less.
ONE_SCENE_PIXEL_RANGE = 0.1
ONE_SCENE_VALUES = 3
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


def check_dataset_format(ctx: DoctorContext) -> list[Finding]:
    """What the reader could read past: metadata that contradicts the data it describes."""
    problems = ctx.dataset.problems
    evidence = {"path": ctx.dataset.path, "problems": problems}
    if problems:
        return [Finding(
            "dataset-format", "warning",
            f"{len(problems)} inconsistenc{'y' if len(problems) == 1 else 'ies'} between the dataset's "
            f"metadata and its data: {problems[0]}", evidence,
            "The data was read as stored; tools that trust the metadata (lerobot's loader, "
            "statistics read from meta/stats.json) see something else. Regenerate the metadata "
            "from the data.")]
    return [ok("dataset-format", "metadata and data agree", evidence)]


def initial_observations(episodes) -> dict[str, np.ndarray]:
    return {k: np.stack([e.obs[k][0] for e in episodes]) for k in float_obs_keys(episodes)}


def initial_frames(episodes) -> dict[str, np.ndarray]:
    """Each camera's first frame per demo, flattened, in [0, 1]."""
    return {k: np.stack([e.obs[k][0] for e in episodes]).reshape(len(episodes), -1).astype(np.float32) / 255
            for k in camera_keys(episodes)}


def check_initial_state_diversity(ctx: DoctorContext) -> list[Finding]:
    episodes = ctx.episodes
    init = initial_observations(episodes)
    frames = initial_frames(episodes)
    per_key = {k: {"std": rounded(v.std(0)), "range": rounded(v.max(0) - v.min(0))}
               for k, v in init.items()}
    spread = max((float((v.max(0) - v.min(0)).max()) for v in init.values()), default=0.0)
    changed = {k: int(((v.max(0) - v.min(0)) > ONE_SCENE_PIXEL_RANGE).sum()) for k, v in frames.items()}
    # A state that never varies beside a camera that does (MetaWorld's hand starts in one place;
    # the object is only in the image): the scenes differ all the same.
    scenes_differ = spread >= ONE_STATE_SPREAD or any(n >= ONE_SCENE_VALUES for n in changed.values())
    rows = [np.round(v, 3) for v in init.values()] + [np.round(v * 4) for v in frames.values()]
    features = np.concatenate(rows, axis=1) if rows else np.zeros((len(episodes), 0))
    distinct = len({tuple(f) for f in features})
    plot = plot_initial_states(ctx, init, None, "initial_states") if init else None
    evidence = {"demos": len(episodes), "distinct_initial_states_at_1mm": distinct,
                "largest_initial_range": round(spread, 6), "per_key": per_key}
    if frames:
        evidence[f"first_frame_values_ranging_over_{ONE_SCENE_PIXEL_RANGE}"] = changed
    collection = ctx.dataset.attrs.get("collection")
    if isinstance(collection, dict) and "fixed_init" in collection:
        evidence["collected_with_fixed_init"] = bool(collection["fixed_init"])
    ctx.statistics["initial_states"] = per_key
    plots = [plot] if plot else []
    if len(episodes) > 1 and not scenes_differ:
        cameras = (f" and the first camera frames differ in {max(changed.values())} pixel values"
                   if frames else "")
        return [Finding(
            "initial-state-diversity", "error",
            f"all {len(episodes)} demos start from one initial state (no initial-state dimension "
            f"varies by more than {spread:.1e}{cameras})",
            evidence,
            "A policy trained on one scene memorises it: training loss looks excellent and "
            "closed-loop success from any other state is near 0%. Collect demos from randomised "
            "initial states (`vlascope collect` without --fixed-init).", plots)]
    if len(episodes) >= 10 and distinct < len(episodes) / 2:
        return [Finding(
            "initial-state-diversity", "warning",
            f"only {distinct} distinct initial states among {len(episodes)} demos",
            evidence, "Repeated initial states add little: collect demos from new seeds.", plots)]
    return [ok("initial-state-diversity",
               f"{distinct} distinct initial states among {len(episodes)} demos", evidence, plots)]


# A state dimension that travels more than this both ways in the median episode has moved under
# its own command (in the state's units: metres for MetaWorld, where a gripper closing under a
# constant command bounces by about half of it and a hand going down to grasp and back travels more).
STATE_MOVES = 0.06


def _two_way_travel(episodes, key: str, d: int) -> float:
    """How far state dim d travels both ways within the median episode (the smaller of its total
    rise and total fall). A gripper closing once under a constant command travels one way; a
    hand that goes down to grasp and back up under a z command that was lost travels both."""
    travel = []
    for e in episodes:
        steps = np.diff(e.obs[key][:, d].astype(np.float64))
        travel.append(min(steps[steps > 0].sum(), -steps[steps < 0].sum()))
    return float(np.median(travel))


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
    mirrored = state_mirroring_actions(ctx.episodes)
    for d in pinned:
        moved = _two_way_travel(ctx.episodes, mirrored, d) if mirrored else None
        if moved is not None and moved > STATE_MOVES:
            # The state at the same index moves while its command never does: the recording lost
            # the command (MetaWorld's robot_state and action are both xyz + gripper).
            findings.append(Finding(
                "near-constant-action-dim", "warning",
                f"action dim {d} never moves (it is {actions[0, d]:.4g} in every frame), yet "
                f"{mirrored} dim {d} travels {moved:.3g} both ways in the median episode: the "
                "command was lost",
                {**evidence, "dim": d, "state_key": mirrored, "state_two_way_travel": round(moved, 5)},
                "The recorder or the conversion lost this command while the robot still moved "
                "along it; the policy can never learn it. Fix the data (the action key, its "
                "column order, a mask applied at export).", [plot]))
        else:
            # A task that never uses a degree of freedom (reach never closes the gripper): a fact.
            findings.append(Finding(
                "near-constant-action-dim", "info",
                f"action dim {d} never moves: it is {actions[0, d]:.4g} in every frame",
                {**evidence, "dim": d},
                "Nothing to do if the task never uses this degree of freedom: the policy will "
                "copy the constant. If it should move (a gripper that must close), the recorder or "
                "the conversion lost it.", [plot]))
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
    normed_ratio, mode = None, None
    try:
        policy = ctx.policy if ctx.policy is not None else ctx.fresh_policy()
        action = next((f for f in policy.normalization() if f.key == "action"), None)
    except NotProvided:
        action = None
    if action is not None and action.applied:
        mode = action.mode
        normed = std[moving] * action.scale[moving]
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


# Observability: can the policy inputs tell where a demo is going? For frames early in each demo
# (the first 30%, where the expert decides; later, the motion itself gives the destination
# away), the displacement the next 100 actions command is predicted by that of the nearest
# frame in another demo (leave-one-demo-out 1-NN on the inputs). Its error over that of a random
# frame is the share the inputs leave unexplained: 0 determined, ~1 unrelated.
# The limits sit between the shares the state inputs leave with the goal hidden and with it
# given, on pick-place, reach and button-press demos (button-press's goal is the button's
# position, object_state; reach's object_state is a distractor, so "every recorded key" can do
# worse than the inputs plus the one key that matters).
UNEXPLAINED_LIMIT = 0.15
UNEXPLAINED_RATIO = 1.5  # times what the best reference set of inputs leaves unexplained
OBSERVABILITY_FRAMES = 3000
OBSERVABILITY_HORIZON = 100
OBSERVABILITY_EARLY = 0.3


def standardised(x: np.ndarray) -> np.ndarray:
    """(frames, ...) as rows standardised per column and scaled to unit total variance, so a
    feature counts the same whatever its width."""
    x = x.reshape(len(x), -1).astype(np.float32)
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-3)
    return x / np.sqrt(max(x.shape[1], 1))


def _frame_features(episodes, keys: list[str], image_side: int = 16) -> np.ndarray:
    """One row per frame: each key standardised (every input counts equally whatever its
    width); images average-pooled to image_side^2 x 3."""
    parts = []
    for k in keys:
        x = np.concatenate([e.obs[k] for e in episodes])
        if x.dtype == np.uint8:
            n, h, w, c = x.shape
            fh, fw = max(h // image_side, 1), max(w // image_side, 1)
            x = x[:, : fh * (h // fh), : fw * (w // fw)].astype(np.float32)
            x = x.reshape(n, h // fh, fh, w // fw, fw, c).mean((2, 4))
        parts.append(standardised(x))
    return np.concatenate(parts, axis=1)


def _future_displacement(episodes, horizon: int) -> np.ndarray:
    """Sum of the next `horizon` actions from each frame (nothing after the demo ends),
    standardised per dimension: where the demo is heading."""
    out = []
    for e in episodes:
        padded = np.concatenate([np.zeros((1, e.actions.shape[1])), e.actions,
                                 np.zeros((horizon, e.actions.shape[1]))])
        total = np.cumsum(padded, 0)
        t = np.arange(len(e))
        out.append(total[t + horizon] - total[t])
    f = np.concatenate(out).astype(np.float32)
    return (f - f.mean(0)) / np.maximum(f.std(0), 1e-3)


def unexplained_share(episodes, keys: list[str], seed: int = 0) -> float:
    """The share of where each demo goes that the observations `keys` leave unexplained."""
    return unexplained_by(episodes, _frame_features(episodes, keys), seed)


def unexplained_by(episodes, features: np.ndarray, seed: int = 0) -> float:
    """The share of where each demo goes that `features` (one row per frame of `episodes`, in
    order) leave unexplained (see the comment above UNEXPLAINED_LIMIT)."""
    import torch

    feats = torch.from_numpy(features)
    target = torch.from_numpy(_future_displacement(episodes, OBSERVABILITY_HORIZON))
    demo = torch.from_numpy(np.concatenate([np.full(len(e), i) for i, e in enumerate(episodes)]))
    early = np.concatenate([np.arange(len(e)) < OBSERVABILITY_EARLY * len(e) for e in episodes])
    g = torch.Generator().manual_seed(seed)
    queries = torch.from_numpy(np.nonzero(early)[0])
    queries = queries[torch.randperm(len(queries), generator=g)[:OBSERVABILITY_FRAMES]]
    nn_err, rand_err = [], []
    for block in queries.split(512):
        d = torch.cdist(feats[block], feats)
        d[demo[block][:, None] == demo[None]] = float("inf")
        nearest = d.argmin(1)
        nn_err.append(((target[block] - target[nearest]) ** 2).sum(1))
        other = torch.randint(0, len(feats), (len(block),), generator=g)
        rand_err.append(((target[block] - target[other]) ** 2).sum(1))
    return float(torch.cat(nn_err).mean() / torch.cat(rand_err).mean().clamp(min=1e-12))


# The goal marker is measured in the scenes of this many demos, at the frames' size and at the
# size published MetaWorld policies read (224 px).
GOAL_VIEW_DEMOS, PUBLISHED_IMAGE_SIZE = 5, 224


def goal_visibility(ctx: DoctorContext, image_key: str) -> dict | None:
    """How many pixels of the policy's camera frames the task's goal marker covers (median over
    the first demos' scenes), at the frames' size and at 224 px; None where the dataset's task is
    not a MetaWorld task or its demos record no initial state. Where the camera cannot be drawn
    on this machine, the reason stands in place of the pixels."""
    from vlascope.envs import MetaWorldEnv, task_names

    task = next((t for t in (ctx.task, ctx.dataset.task) if t in task_names()), None)
    states = [e.attrs["initial_state"] for e in ctx.episodes[:GOAL_VIEW_DEMOS] if "initial_state" in e.attrs]
    if task is None or not states:
        return None
    camera, size = image_key.removesuffix("_image"), int(ctx.episodes[0].obs[image_key].shape[1])
    pixels = {}
    try:
        for side in dict.fromkeys((size, PUBLISHED_IMAGE_SIZE)):
            env = MetaWorldEnv(task, camera=camera, image_size=side, camera_view=ctx.dataset.camera_view)
            try:
                counts = []
                for state in states:
                    env.reset(0, initial_state=np.asarray(state))
                    counts.append(env.goal_marker_pixels())
            finally:
                env.close()
            pixels[side] = int(np.median(counts))
    except Exception as exc:  # noqa: BLE001 - no renderer on this machine, a camera MetaWorld lacks
        return {"task": task, "camera": camera, "not_measured": f"{type(exc).__name__}: {exc}"}
    return {"task": task, "camera": camera, "image_size": size, "median_pixels": pixels,
            "demos": len(states)}


@dataclass(frozen=True)
class Observability:
    """What the policy inputs leave unexplained of where each demo goes, against reference sets
    of inputs (`best` the one to compare with)."""

    inputs: list[str]
    share: float
    references: dict[str, float]
    best: str

    @property
    def missing(self) -> str | None:
        """The one recorded key that closes the gap, where one does."""
        return self.best.removeprefix("inputs + ") if self.best.startswith("inputs + ") else None

    def leaves_unexplained(self, share: float) -> bool:
        """Whether features leaving `share` unexplained miss what the best reference tells."""
        return share > UNEXPLAINED_LIMIT and share > UNEXPLAINED_RATIO * self.references[self.best]


def observability_shares(ctx: DoctorContext) -> Observability:
    """The policy inputs' shares and the references', computed once for the checks that compare
    against them."""
    if "observability" not in ctx.cache:
        episodes = ctx.episodes
        inputs = [k for k in ctx.obs_keys if k in episodes[0].obs]
        recorded = float_obs_keys(episodes)
        everything = sorted(set(recorded) | set(inputs))
        share = unexplained_share(episodes, inputs, ctx.seed)
        references = {"all recorded observations": unexplained_share(episodes, everything, ctx.seed)}
        for k in recorded:
            if k not in inputs:
                references[f"inputs + {k}"] = unexplained_share(episodes, inputs + [k], ctx.seed)
        best = min(references, key=references.get)
        single = [k for k in references if k.startswith("inputs + ")]
        if single:  # name one missing key when it alone does (about) as well as everything
            best_single = min(single, key=references.get)
            if references[best_single] <= 1.1 * references[best] + 0.01:
                best = best_single
        ctx.cache["observability"] = Observability(inputs, share, references, best)
    return ctx.cache["observability"]


def check_observability(ctx: DoctorContext) -> list[Finding]:
    episodes = ctx.episodes
    if len(episodes) < 3:
        return [skipped("observability", f"needs at least 3 demos, the dataset has {len(episodes)}")]
    shares = observability_shares(ctx)
    inputs, share, references, best = shares.inputs, shares.share, shares.references, shares.best
    evidence = {"policy_inputs": inputs, "unexplained_share": round(share, 3),
                "references": {k: round(v, 3) for k, v in references.items()},
                "method": f"frames in the first {int(100 * OBSERVABILITY_EARLY)}% of each demo; "
                          f"displacement commanded by the next {OBSERVABILITY_HORIZON} actions, "
                          "predicted by the nearest frame (on the inputs) of another demo, error "
                          "relative to a random frame's"}
    plot = plot_bars(ctx, {"policy inputs": share, **references}, "observability",
                     "share of where each demo goes that the inputs leave unexplained\n"
                     "(nearest frame of another demo vs a random one)", threshold=UNEXPLAINED_LIMIT,
                     flagged="above")
    if shares.leaves_unexplained(share):
        missing = shares.missing
        evidence["missing_input"] = missing  # the one recorded key that closes the gap, if one does
        fix = (f"Add '{missing}' to the policy inputs (the share drops to {references[best]:.2f})"
               if missing else "Give the policy what its actions depend on (the recorded "
               f"observations bring the share to {references[best]:.2f})")
        title = (f"the policy inputs ({', '.join(inputs)}) leave {100 * share:.0f}% of where each demo "
                 f"goes unexplained ({best}: {100 * references[best]:.0f}%): demos that look the same "
                 "to the policy head for different places")
        seen, camera_fix, caveat = "", "make it visible to the camera (a rendered goal marker)", ""
        images = [k for k in inputs if episodes[0].obs[k].dtype == np.uint8]
        marker = goal_visibility(ctx, images[0]) if missing == "goal" and images else None
        if marker is not None:
            evidence["goal_marker"] = marker
        if marker is not None and "median_pixels" in marker:
            seen, camera_fix, caveat = _goal_marker_words(marker)
        return [Finding(
            "observability", "error", title + seen, evidence,
            f"{fix}, or {camera_fix}. Otherwise the policy learns the average of the diverging "
            "demos and, in closed loop, commits to a direction it cannot know: good training loss, "
            "low success." + caveat, [plot])]
    return [ok("observability", f"the policy inputs tell where each demo goes about as well as "
               f"the recorded observations do ({100 * share:.0f}% unexplained; {best}: "
               f"{100 * references[best]:.0f}%)", evidence, [plot])]


def _goal_marker_words(marker: dict) -> tuple[str, str, str]:
    """What the observability finding adds to its title, its camera fix and a caveat, once the
    goal marker is measured: not in the frames at all, or in them but small."""
    size, camera, pixels = marker["image_size"], marker["camera"], marker["median_pixels"]
    here = pixels[size]
    if here == 0:
        return (f"; the goal is not drawn in the {size} px {camera} frames",
                "give the policy a camera that shows the goal", "")
    larger = "".join(f", {n} at {side} px" for side, n in pixels.items() if side != size)
    return (f"; the goal marker is drawn, but covers {here} of the {size * size} pixels of the {size} px "
            f"{camera} frames",
            f"let the policy see the marker it has: larger frames ({here} pixels at {size} px{larger}) "
            "or an image encoder that keeps small detail",
            " This check compares frames pooled to 16x16 cells, where a marker this small barely "
            "counts: a policy that reads every pixel may still find it.")


def per_dimension_statistics(episodes) -> dict[str, dict[str, np.ndarray]]:
    """Mean, std, min and max per dimension of the actions and each low-dimensional observation
    key, over every frame; NaN/inf values are left out (a broken demo still gets described)."""
    arrays = {"action": np.concatenate([e.actions for e in episodes])}
    arrays |= {k: np.concatenate([e.obs[k] for e in episodes]) for k in float_obs_keys(episodes)}
    out = {}
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN dimension gives NaN
        for k, v in arrays.items():
            v = np.where(np.isfinite(v), v, np.nan)
            out[k] = {"mean": np.nanmean(v, 0), "std": np.nanstd(v, 0),
                      "min": np.nanmin(v, 0), "max": np.nanmax(v, 0)}
    return out


def dataset_statistics(ctx: DoctorContext) -> dict:
    episodes = ctx.episodes
    out = {"path": str(ctx.dataset.path), "task": ctx.dataset.task,
           "demos": len(ctx.dataset.episodes), "finite_demos": len(episodes),
           "episode_length": {"min": int(min(map(len, episodes))), "max": int(max(map(len, episodes))),
                              "mean": float(np.mean([len(e) for e in episodes]))}}
    out["per_key"] = {k: {"mean": rounded(s["mean"]), "std": rounded(s["std"], 6),
                          "min": rounded(s["min"]), "max": rounded(s["max"])}
                      for k, s in per_dimension_statistics(episodes).items()}
    return out


DATA_CHECKS = [check_nan_in_data, check_dataset_format, check_initial_state_diversity,
               check_near_constant_action_dim, check_action_scale_imbalance, check_observability,
               *EPISODE_CHECKS]
