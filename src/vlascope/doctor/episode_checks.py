"""Checks that compare episodes with each other: the faults that hide in one demo among many.

Each finding names the culprit episodes. The thresholds are set so that healthy scripted-expert
data (MetaWorld's, whose expert saturates its action bounds, toggles the gripper in one step and
leaves unused dimensions constant) raises nothing, while one demo recorded twice, one demo in other
units, a single-step glitch, a sensor that freezes or saturates does.
"""

from __future__ import annotations

import hashlib

import numpy as np

from vlascope.doctor.context import DoctorContext, camera_keys, float_obs_keys, state_mirroring_actions
from vlascope.doctor.findings import Finding, ok, skipped

# Near-duplicates: two demos whose actions and observations (resampled to a common length, in
# units of each dimension's std) differ by less than this RMS, and by less than NEAR_SHARE of the
# typical distance from a demo to its nearest other demo.
NEAR_RMS = 0.05
NEAR_SHARE = 0.02
RESAMPLED = 32
# Such a pair is a copy when the difference between the two is noise: its step-to-step change is
# about sqrt(2) times its size for independent noise; two rollouts from nearly one scene (two
# seeds that drew a one-dimensional placement micrometres apart) differ smoothly, far below 1.
COPY_ROUGHNESS = 0.5
# An episode whose spread about the dataset's median, on some dimension, is this many times the
# median episode's (and twice any other episode's) is in other units or scaled by mistake.
SCALE_RATIO = 10.0
# Lengths this many times the median (or below its inverse) are outliers.
LENGTH_RATIO = 4.0
# A glitch: a step that leaves both neighbours by more than GLITCH_SHARE of the dimension's
# range, while the neighbours agree within NEIGHBOUR_SHARE of it.
# and by more than STEP_RATIO times the signal's 99th-percentile step (jittery signals jitter).
GLITCH_SHARE = 0.5
NEIGHBOUR_SHARE = 0.1
STEP_RATIO = 10.0
# A frozen signal: at least FROZEN_STEPS identical consecutive readings, FROZEN_RATIO times the
# longest such run the median episode has in the same key.
FROZEN_STEPS = 20
FROZEN_RATIO = 3.0
# A saturated signal: at least PILE_SHARE of all frames sit exactly at the dimension's extreme.
PILE_SHARE = 0.05
PILE_FRAMES = 20
# A stale first observation, in at least STALE_SHARE of the episodes (and two):
# - a low-dimensional key changes at the first step by STALE_RATIO times the largest of its next
#   STALE_NEXT steps, and by at least STALE_SCENE_SHARE of the distance between two episodes'
#   first observations (a jump to another scene, not motion);
# - in a camera, the pixels that change at the first step and then hold still for STALE_HOLD
#   steps (a scene that was redrawn once) are STALE_IMAGE_RATIO times as many as at any of the
#   next STALE_HOLD steps, and at least STALE_PIXELS of the frame. A moving arm changes pixels at
#   every step alike; pixels differ when a channel moves by more than STALE_GREY levels.
STALE_RATIO = 5.0
STALE_NEXT = 5
STALE_SCENE_SHARE = 0.25
STALE_IMAGE_RATIO = 3.0
STALE_HOLD = 3
STALE_PIXELS = 0.005
STALE_GREY = 8
STALE_SHARE = 0.2
# A signal with fewer distinct values than this is a discrete command, not a measurement.
CONTINUOUS_VALUES = 50
# Values where a pile-up is the action space's own bound, not a sensor's.
ACTION_BOUNDS = (-1.0, 0.0, 1.0)


def _signals(episodes) -> dict[str, list[np.ndarray]]:
    """'action' and each low-dimensional observation key -> per-episode (T, D) float arrays."""
    out = {"action": [e.actions.astype(np.float64) for e in episodes]}
    for k in float_obs_keys(episodes):
        out[f"obs/{k}"] = [e.obs[k].reshape(len(e), -1).astype(np.float64) for e in episodes]
    return out


def _name(episodes, i: int) -> str:
    return episodes[i].name or f"episode {i}"


def _resampled(actions: np.ndarray, scale: np.ndarray) -> np.ndarray:
    t = np.linspace(0, len(actions) - 1, RESAMPLED)
    cols = [np.interp(t, np.arange(len(actions)), actions[:, d]) for d in range(actions.shape[1])]
    return (np.stack(cols, 1) / scale).reshape(-1) / np.sqrt(actions.shape[1])


def _difference_roughness(signals: dict, scales: dict, i: int, j: int) -> float:
    """RMS of the step-to-step change of the difference between episodes i and j (each signal
    in units of its scale, over their common length), over the RMS of the difference."""
    parts = []
    for name, series in signals.items():
        n = min(len(series[i]), len(series[j]))
        parts.append((series[i][:n] - series[j][:n]) / scales[name])
    difference = np.concatenate(parts, 1)
    if len(difference) < 2:
        return float("inf")
    size = np.sqrt((difference ** 2).mean())
    return float(np.sqrt((np.diff(difference, axis=0) ** 2).mean()) / size) if size > 0 else float("inf")


def check_duplicate_episodes(ctx: DoctorContext) -> list[Finding]:
    episodes = ctx.episodes
    if len(episodes) < 2:
        return [ok("duplicate-episodes", "one episode: nothing to compare", {"episodes": len(episodes)})]
    keys = float_obs_keys(episodes)
    digests: dict[str, list[int]] = {}
    for i, e in enumerate(episodes):
        h = hashlib.sha1(np.ascontiguousarray(e.actions).tobytes())
        for k in keys:
            h.update(np.ascontiguousarray(e.obs[k]).tobytes())
        digests.setdefault(h.hexdigest(), []).append(i)
    exact = [group for group in digests.values() if len(group) > 1]
    in_exact = {i for group in exact for i in group[1:]}
    # Actions and observations together: two demos of a task whose expert moves alike from
    # different scenes are distinct; the same scene recorded twice is not.
    signals = _signals(episodes)
    scales = {}
    for name, series in signals.items():
        flat = np.concatenate(series)
        # A floor relative to the signal's size: a dimension constant across the dataset (a goal's
        # fixed height) would otherwise turn float noise into distance.
        scales[name] = np.maximum(flat.std(0), 1e-3 * np.abs(flat).max()) + 1e-6
    vectors = np.stack([np.concatenate([_resampled(series[i], scales[name]) for name, series in signals.items()])
                        for i in range(len(episodes))])
    dist = np.sqrt(((vectors[:, None] - vectors[None]) ** 2).mean(-1))
    np.fill_diagonal(dist, np.inf)
    nearest = dist.min(1)
    typical = float(np.median(nearest[np.isfinite(nearest) & (nearest > 0)])) if (nearest > 0).any() else 0.0
    threshold = min(NEAR_RMS, NEAR_SHARE * typical) if typical > 0 else NEAR_RMS
    # Exact copies are reported once, as a group, not again as near pairs.
    close = [(int(i), int(j)) for i, j in zip(*np.nonzero(dist < threshold))
             if i < j and i not in in_exact and j not in in_exact]
    roughness = {pair: _difference_roughness(signals, scales, *pair) for pair in close}
    near = [pair for pair in close if roughness[pair] >= COPY_ROUGHNESS]
    neighbours = [pair for pair in close if roughness[pair] < COPY_ROUGHNESS]

    def pair_rows(pairs):
        return [{"episodes": [_name(episodes, i), _name(episodes, j)],
                 "distance": round(float(dist[i, j]), 5), "difference_roughness": round(roughness[(i, j)], 3)}
                for i, j in pairs[:20]]

    evidence = {"episodes": len(episodes), "typical_distance_to_nearest_episode": round(typical, 4),
                "near_threshold": round(threshold, 4),
                "exact_groups": [[_name(episodes, i) for i in g] for g in exact],
                "near_pairs": pair_rows(near), "nearby_rollouts": pair_rows(neighbours)}
    findings = []
    for group in exact:
        names = [_name(episodes, i) for i in group]
        findings.append(Finding(
            "duplicate-episodes", "warning",
            f"{names[0]} is recorded {len(group)} times ({', '.join(names[1:6])}"
            f"{'...' if len(names) > 6 else ''} are identical copies)",
            {**evidence, "culprits": names},
            "Drop the copies: a duplicated demo weighs its scene several times over and, split "
            "between training and validation, makes held-out error meaningless."))
    if near:
        names = sorted({_name(episodes, i) for pair in near for i in pair})
        findings.append(Finding(
            "duplicate-episodes", "warning",
            f"{len(near)} pair(s) of near-identical episodes ({', '.join(f'{_name(episodes, i)} ~ {_name(episodes, j)}' for i, j in near[:3])}"
            f"{'...' if len(near) > 3 else ''}): actions and observations within {threshold:.3f} std, "
            f"against {typical:.3f} between a typical episode and its nearest other",
            {**evidence, "culprits": names},
            "A near-copy is the same demo recorded again (a replay, a re-export with noise): keep "
            "one of each pair, or confirm they are distinct scenes."))
    if neighbours:
        i, j = neighbours[0]
        findings.append(Finding(
            "duplicate-episodes", "info",
            f"{len(neighbours)} pair(s) of episodes start from nearly one scene ({_name(episodes, i)} ~ "
            f"{_name(episodes, j)}, {float(dist[i, j]):.2g} std apart) and diverge smoothly: separate "
            f"rollouts, not copies", evidence,
            "Nothing to fix: their difference grows smoothly from the start, as two rollouts from "
            "nearby placements do, where a re-export differs by noise. Each such pair adds little "
            "to the data; more scenes would."))
    if findings:
        return findings
    return [ok("duplicate-episodes", f"no two of {len(episodes)} episodes are copies "
               f"(nearest pair {float(nearest.min()):.3f} std apart, typical {typical:.3f})", evidence)]


def check_outlier_episodes(ctx: DoctorContext) -> list[Finding]:
    episodes = ctx.episodes
    lengths = np.array([len(e) for e in episodes])
    median_length = float(np.median(lengths))
    findings, scale_rows = [], []
    for name, series in _signals(episodes).items():
        # Spread about the dataset's median, per episode: a position near the origin is not an
        # outlier, while values ten times farther out than every other episode's are.
        centre = np.median(np.concatenate(series), 0)
        rms = np.stack([np.sqrt(((x - centre) ** 2).mean(0)) for x in series])  # (episodes, D)
        typical = np.median(rms, 0)
        for d in np.nonzero(typical > 1e-6)[0]:
            ratio = rms[:, d] / typical[d]
            others = np.delete(rms[:, d], np.argmax(ratio)).max() if len(ratio) > 1 else typical[d]
            for i in np.nonzero((ratio > SCALE_RATIO) & (rms[:, d] > 2 * others))[0]:
                scale_rows.append({"episode": _name(episodes, int(i)), "signal": name, "dim": int(d),
                                   "ratio_to_median_episode": round(float(ratio[i]), 3)})
    evidence = {"median_length": median_length, "min_length": int(lengths.min()),
                "max_length": int(lengths.max()), "scale_outliers": scale_rows[:50]}
    by_episode: dict[str, list[dict]] = {}
    for row in scale_rows:
        by_episode.setdefault(row["episode"], []).append(row)
    for episode, rows in by_episode.items():
        worst = max(rows, key=lambda r: abs(np.log(r["ratio_to_median_episode"] + 1e-12)))
        findings.append(Finding(
            "outlier-episodes", "warning",
            f"{episode}: {worst['signal']} dim {worst['dim']} is {worst['ratio_to_median_episode']:.3g}x "
            f"the median episode's spread ({len(rows)} signal dimension(s) beyond "
            f"{SCALE_RATIO:.0f}x)", {**evidence, "culprits": [episode], "rows": rows[:20]},
            "One episode in other units (mm for m, degrees for radians, a gain applied twice) "
            "dominates the statistics and the loss: fix its conversion or drop it."))
    long = np.nonzero((lengths > LENGTH_RATIO * median_length) | (lengths < median_length / LENGTH_RATIO))[0]
    if len(long):
        names = [_name(episodes, int(i)) for i in long]
        findings.append(Finding(
            "outlier-episodes", "warning",
            f"{len(long)} episode(s) with a length far from the median {median_length:.0f} steps: "
            + ", ".join(f"{_name(episodes, int(i))} ({lengths[i]})" for i in long[:5]),
            {**evidence, "culprits": names},
            "A demo several times longer or shorter than the rest is often a recording that "
            "did not stop, or one cut short: look at it before training on it."))
    return findings or [ok("outlier-episodes", f"every episode's magnitude within {SCALE_RATIO:.0f}x of "
                           f"the median episode's; lengths {int(lengths.min())}-{int(lengths.max())} steps",
                           evidence)]


def check_action_jumps(ctx: DoctorContext) -> list[Finding]:
    """Single-step glitches in the actions and low-dimensional observations."""
    episodes = ctx.episodes
    rows = []
    for name, series in _signals(episodes).items():
        flat = np.concatenate(series)
        span = flat.max(0) - flat.min(0)
        steps = np.concatenate([np.abs(np.diff(x, axis=0)) for x in series if len(x) > 1])
        usual = np.percentile(steps, 99, axis=0) if len(steps) else np.zeros_like(span)
        for i, x in enumerate(series):
            if len(x) < 3:
                continue
            before, here, after = x[:-2], x[1:-1], x[2:]
            away = np.minimum(np.abs(here - before), np.abs(here - after))
            agree = np.abs(after - before)
            glitch = ((away > GLITCH_SHARE * span) & (away > STEP_RATIO * usual)
                      & (agree < NEIGHBOUR_SHARE * span) & (span > 0))
            if name == "action":  # a bang-bang expert touching its bound for one step is motion
                glitch &= ~np.isin(here, ACTION_BOUNDS)
            for t, d in zip(*np.nonzero(glitch)):
                rows.append({"episode": _name(episodes, i), "signal": name, "step": int(t) + 1, "dim": int(d),
                             "value": round(float(here[t, d]), 5),
                             "neighbours": [round(float(before[t, d]), 5), round(float(after[t, d]), 5)]})
    evidence = {"glitches": rows[:50], "count": len(rows)}
    if rows:
        culprits = sorted({r["episode"] for r in rows})
        first = rows[0]
        return [Finding(
            "action-jumps", "warning",
            f"{len(rows)} single-step glitch(es) in {len(culprits)} episode(s): {first['episode']} "
            f"{first['signal']} dim {first['dim']} jumps to {first['value']:.4g} at step {first['step']} "
            f"between {first['neighbours'][0]:.4g} and {first['neighbours'][1]:.4g}",
            {**evidence, "culprits": culprits},
            "A value that leaves both neighbours while they agree is a dropped or corrupted "
            "sample (a teleop packet, a serialisation bug), not motion: interpolate it or drop "
            "the episode. The policy would otherwise learn to twitch.")]
    return [ok("action-jumps", "no single-step glitches in actions or observations", evidence)]


def _frozen_run(x: np.ndarray) -> int:
    """The longest stretch of consecutive frames in which every dimension repeats exactly."""
    same = np.concatenate([[False], (x[1:] == x[:-1]).all(1), [False]])
    edges = np.flatnonzero(np.diff(same.astype(np.int8)))
    return int((edges[1::2] - edges[::2]).max()) + 1 if len(edges) else 1


def check_frozen_signals(ctx: DoctorContext) -> list[Finding]:
    """An observation that stops updating inside one episode (every dimension of the key repeats
    bit for bit) while in the other episodes it keeps moving: a sensor or recorder that froze.
    An object at rest freezes in every episode alike and is not flagged."""
    episodes = ctx.episodes
    rows = []
    for name, series in _signals(episodes).items():
        if name == "action":
            continue  # a held command is ordinary (a gripper kept closed); a held reading is not
        runs = np.array([_frozen_run(x) for x in series])
        typical = float(np.median(runs))
        for i in np.nonzero((runs >= FROZEN_STEPS) & (runs >= FROZEN_RATIO * typical))[0]:
            rows.append({"episode": _name(episodes, int(i)), "signal": name,
                         "identical_steps": int(runs[i]), "median_episode_run": typical,
                         "length": len(series[i])})
    evidence = {"frozen": rows[:50]}
    if rows:
        culprits = sorted({r["episode"] for r in rows})
        first = rows[0]
        return [Finding(
            "frozen-signals", "warning",
            f"{first['signal']} repeats one reading for {first['identical_steps']} steps in "
            f"{first['episode']} (the median episode: {first['median_episode_run']:.0f}); "
            f"{len(rows)} such stretch(es) in {len(culprits)} episode(s)",
            {**evidence, "culprits": culprits},
            "A reading that repeats bit for bit while the robot moves is a stale sensor or a "
            "recorder that reused its last sample: the policy sees a world that stopped. Fix the "
            "recording or drop those stretches.")]
    return [ok("frozen-signals", "no observation freezes inside an episode while moving in the others",
               evidence)]


def check_clipped_values(ctx: DoctorContext) -> list[Finding]:
    """Values piled up at a dimension's extreme: a sensor or a conversion that saturates. Only
    the commands and the robot's own state are examined: an object at rest, or stopped by its
    joint's end (a drawer shut, a window closed), piles up at one value by physics."""
    episodes = ctx.episodes
    robot = state_mirroring_actions(episodes)
    examined = {k: v for k, v in _signals(episodes).items() if k in ("action", f"obs/{robot}")}
    rows, bounds = [], []
    for name, series in examined.items():
        flat = np.concatenate(series)
        lo, hi = flat.min(0), flat.max(0)
        for d in np.nonzero(hi - lo > 1e-4)[0]:
            if len(np.unique(flat[:, d])) < CONTINUOUS_VALUES:
                continue  # a discrete command (a gripper's open/close levels) has no clip
            for side, value in (("max", hi[d]), ("min", lo[d])):
                at = flat[:, d] == value
                if at.sum() < max(PILE_FRAMES, PILE_SHARE * len(flat)):
                    continue
                # A signal constant within each episode (a goal) sits at the extreme for the
                # whole of one episode: that is where that episode's goal is, not a clip.
                if not any((x[:, d] == value).any() and not (x[:, d] == value).all() for x in series):
                    continue
                row = {"signal": name, "dim": int(d), "at": side, "value": round(float(value), 6),
                       "share_of_frames": round(float(at.mean()), 3),
                       "episodes": sorted({_name(episodes, i) for i, x in enumerate(series)
                                           if (x[:, d] == value).any()})[:10]}
                # A value at -1, 0 or 1: a signal normalised into its range resting at the bound
                # (an expert saturating its action space, a gripper reading fully open), which
                # a policy should reproduce; reported, not flagged.
                (bounds if float(value) in ACTION_BOUNDS else rows).append(row)
    evidence = {"examined": sorted(examined), "saturated": rows[:50], "at_unit_bounds": bounds[:20]}
    if rows:
        first = rows[0]
        culprits = sorted({e for r in rows for e in r["episodes"]})
        return [Finding(
            "clipped-values", "warning",
            f"{first['signal']} dim {first['dim']} sits exactly at its {first['at']} "
            f"{first['value']:.6g} in {100 * first['share_of_frames']:.0f}% of frames"
            + (f" (and {len(rows) - 1} more)" if len(rows) > 1 else "") + ": a clipped signal",
            {**evidence, "culprits": culprits},
            "Values pile up at one extreme when a sensor saturates or a conversion clips: the "
            "policy cannot see beyond the clip. Widen the range at recording or conversion.")]
    note = (f"; values at the unit bounds {sorted({r['value'] for r in bounds})} in up to "
            f"{max(r['share_of_frames'] for r in bounds):.0%} of frames (signals that saturate by "
            "design)") if bounds else ""
    return [ok("clipped-values", f"neither the actions nor {robot or 'the robot state'} pile up at a clip"
               + note, evidence)]


def _opening_steps(x: np.ndarray) -> tuple[float, float]:
    """A low-dimensional key's mean absolute change at the first step, and the largest of its
    next STALE_NEXT steps."""
    head = x[:STALE_NEXT + 2].reshape(min(len(x), STALE_NEXT + 2), -1).astype(np.float64)
    steps = np.abs(np.diff(head, axis=0)).mean(1)
    return float(steps[0]), float(steps[1:].max())


def _redrawn_pixels(frames: np.ndarray) -> tuple[float, float]:
    """The share of a camera's pixels that change at the first step and then hold still for
    STALE_HOLD steps, and the largest such share at the next STALE_HOLD steps."""
    x = frames[:2 * STALE_HOLD + 2].astype(np.int16)
    x = x.reshape(len(x), -1, x.shape[-1]) if x.ndim == 4 else x.reshape(len(x), -1, 1)

    def held(t: int) -> float:
        changed = np.abs(x[t + 1] - x[t]).max(-1) > STALE_GREY
        for later in x[t + 2:t + 2 + STALE_HOLD]:
            changed &= np.abs(later - x[t + 1]).max(-1) <= STALE_GREY
        return float(changed.mean())

    return held(0), max(held(t) for t in range(1, STALE_HOLD + 1))


def check_stale_first_observation(ctx: DoctorContext) -> list[Finding]:
    """Episodes whose first observation shows another scene than the rest of the episode: the
    recorder read the simulator after it reset the state but before it recomputed positions (a
    MuJoCo reset without a forward pass, as MetaWorld's), so the first frame keeps the previous
    episode's placement. The first step then jumps as far as one scene is from another, or
    redraws part of the frame once, while the next steps move a little; motion from rest does
    neither."""
    shortest = max(2 * STALE_HOLD + 2, STALE_NEXT + 2)  # the opening steps both measures read
    # Indices into the whole dataset, so that an unnamed episode is named as the other checks name it.
    long = [i for i, e in enumerate(ctx.episodes) if len(e) >= shortest]
    if len(long) < 2:
        return [skipped("stale-first-observation", f"fewer than 2 episodes of {shortest} steps or more")]
    episodes = [ctx.episodes[i] for i in long]
    images, keys = camera_keys(episodes), float_obs_keys(episodes)
    rows = []
    for key in [*keys, *images]:
        jumps = []
        if key in images:
            for i, e in zip(long, episodes):
                first, after = _redrawn_pixels(e.obs[key])
                if first >= STALE_PIXELS and first > STALE_IMAGE_RATIO * after:
                    jumps.append({"episode": _name(ctx.episodes, i), "first_step": round(first, 4),
                                  "largest_of_next_steps": round(after, 4)})
            measure = "share of pixels redrawn at one step and then still"
        else:
            firsts = [e.obs[key][0].astype(np.float64).reshape(-1) for e in episodes]
            # How far apart two episodes' scenes are at the start: the size of a jump to another.
            scene = float(np.median([np.abs(a - b).mean() for a, b in zip(firsts, firsts[1:])]))
            for i, e in zip(long, episodes):
                first, after = _opening_steps(e.obs[key])
                if scene > 0 and first > STALE_RATIO * after and first >= STALE_SCENE_SHARE * scene:
                    jumps.append({"episode": _name(ctx.episodes, i), "first_step": round(first, 6),
                                  "largest_of_next_steps": round(after, 6),
                                  "first_observations_apart": round(scene, 6)})
            measure = "mean absolute change a step"
        if len(jumps) >= max(2, STALE_SHARE * len(episodes)):
            rows.append({"key": key, "measure": measure, "episodes": len(jumps), "jumps": jumps[:20],
                         "culprits": [j["episode"] for j in jumps]})
    evidence = {"episodes": len(episodes), "keys": keys + images, "stale": rows}
    if rows:
        worst = max(rows, key=lambda r: r["episodes"])
        example = worst["jumps"][0]
        return [Finding(
            "stale-first-observation", "warning",
            f"the first observation of {worst['episodes']} of {len(episodes)} episodes shows another "
            f"scene: {worst['key']}'s {worst['measure']} is {example['first_step']:.4g} at the first "
            f"step of {example['episode']}, at most {example['largest_of_next_steps']:.4g} at the next ones"
            + (f"; also in {', '.join(r['key'] for r in rows if r is not worst)}" if len(rows) > 1 else ""),
            {**evidence, "culprits": sorted({c for r in rows for c in r["culprits"]})},
            "The recorder read the simulator before it placed the new scene: with MuJoCo, run "
            "mj_forward after the reset (MetaWorld's reset does not; vlascope's MetaWorldEnv does) "
            "and record again, or drop each episode's first step. A policy trained on this makes "
            "its first decision of every episode from the previous episode's scene.")]
    return [ok("stale-first-observation", f"no episode's first observation jumps to another scene "
               f"({len(keys) + len(images)} key(s), {len(episodes)} episodes)", evidence)]


EPISODE_CHECKS = [check_duplicate_episodes, check_outlier_episodes, check_action_jumps,
                  check_frozen_signals, check_clipped_values, check_stale_first_observation]
