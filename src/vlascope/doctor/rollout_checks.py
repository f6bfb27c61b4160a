"""Checks that need the simulator (`--task`): where evaluation starts against where the demos
started, held-out expert demos, closed-loop success on dataset-like vs. random initial states,
and whether loss and reward tracked success across a run's checkpoints."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

import numpy as np

from vlascope.doctor.context import DoctorContext, float_obs_keys
from vlascope.doctor.data_checks import initial_observations
from vlascope.doctor.findings import Finding, ok, skipped
from vlascope.doctor.plots import plot_initial_states
from vlascope.envs import MetaWorldEnv, episode_seed, make_expert
from vlascope.envs.collect import run_expert_episode
from vlascope.evaluate.metrics import gap_p_value
from vlascope.evaluate.runner import env_spec, evaluate
from vlascope.evaluate.sweep import tracking
from vlascope.policies.interface import NotProvided

HELD_OUT_DEMOS = 5
# A success gap is an error only where its episodes make chance an unlikely cause.
GAP_P_VALUE = 0.05


def _eval_initial_observations(ctx: DoctorContext, n: int) -> dict[str, np.ndarray]:
    env = MetaWorldEnv(ctx.task)
    try:
        firsts = [env.reset(episode_seed(ctx.seed, i, "eval")) for i in range(n)]
    finally:
        env.close()
    return {k: np.stack([o[k] for o in firsts]) for k in firsts[0]}


def check_eval_coverage(ctx: DoctorContext) -> list[Finding]:
    if not ctx.task:
        return [skipped("eval-coverage", "needs --task")]
    train = initial_observations(ctx.episodes)
    evaluation = _eval_initial_observations(ctx, max(ctx.eval_episodes, 20))
    keys = [k for k in float_obs_keys(ctx.episodes) if k in evaluation
            and evaluation[k].shape[1] == train[k].shape[1]]
    if not keys:
        return [skipped("eval-coverage", f"the dataset shares no observation key with {ctx.task}")]
    tr = np.concatenate([train[k] for k in keys], axis=1).astype(np.float64)
    ev = np.concatenate([evaluation[k] for k in keys], axis=1).astype(np.float64)
    to_train = np.linalg.norm(ev[:, None] - tr[None], axis=-1).min(1)
    within = np.linalg.norm(tr[:, None] - tr[None], axis=-1)
    np.fill_diagonal(within, np.inf)
    spacing = float(np.median(within.min(1))) if len(tr) > 1 else 0.0
    # 1 mm floor: with every demo from one state the spacing is 0, and any other state is "far".
    threshold = max(3 * spacing, 1e-3)
    outside = float((to_train > threshold).mean())
    lo, hi = tr.min(0), tr.max(0)
    out_of_box = float(((ev < lo - 1e-6) | (ev > hi + 1e-6)).any(1).mean())
    plot = plot_initial_states(ctx, train, evaluation, "eval_coverage")
    evidence = {"task": ctx.task, "dataset_task": ctx.dataset.task, "keys": keys,
                "eval_states": len(ev), "train_states": len(tr),
                "median_distance_eval_to_nearest_demo": round(float(np.median(to_train)), 4),
                "max_distance_eval_to_nearest_demo": round(float(to_train.max()), 4),
                "median_spacing_between_demos": round(spacing, 4),
                "fraction_of_eval_states_farther_than_3x_spacing": round(outside, 3),
                "fraction_of_eval_states_outside_demo_bounding_box": round(out_of_box, 3)}
    if outside > 0.2:
        severity = "error" if outside > 0.5 else "warning"
        return [Finding(
            "eval-coverage", severity,
            f"{100 * outside:.0f}% of evaluation initial states lie farther from every demo's start "
            f"than 3x the spacing between demos (median {np.median(to_train):.3f} vs spacing "
            f"{spacing:.3f}): evaluation asks for states the policy never saw",
            evidence,
            "Collect demos whose initial states cover the evaluation distribution (randomised "
            "resets, more demos), or evaluate where the demos are if that is the deployment.", [plot])]
    return [ok("eval-coverage", f"evaluation initial states lie among the demos' (median distance "
               f"{np.median(to_train):.3f}, demo spacing {spacing:.3f})", evidence, [plot])]


def held_out_env(ctx: DoctorContext) -> MetaWorldEnv:
    """The task's simulator rendering the cameras the policy reads, as its closed-loop
    evaluation renders them."""
    return MetaWorldEnv(**env_spec(ctx.policy.closed_loop_policy().config, ctx.task))


def collect_held_out(ctx: DoctorContext) -> list:
    """A few expert demos from evaluation seeds: data the checkpoint never trained on."""
    if not ctx.task or ctx.quick or ctx.policy is None:
        return []
    try:
        env = held_out_env(ctx)
    except NotProvided:
        return []
    expert = make_expert(ctx.task)
    episodes = []
    try:
        for i in range(HELD_OUT_DEMOS * 2):
            ep, success = run_expert_episode(env, expert, episode_seed(ctx.seed + 1, i, "eval"))
            if success:
                episodes.append(ep)
            if len(episodes) == HELD_OUT_DEMOS:
                break
    finally:
        env.close()
    if not episodes or any(k not in episodes[0].obs for k in ctx.policy.spec.obs_keys):
        return []  # an input the simulator does not record
    return episodes


def check_train_eval_gap(ctx: DoctorContext) -> list[Finding]:
    if not ctx.task:
        return [skipped("train-eval-gap", "needs --task")]
    if ctx.policy is None:
        return [skipped("train-eval-gap", "needs --checkpoint")]
    if ctx.quick:
        return [skipped("train-eval-gap", "--quick")]
    if ctx.dataset.task and ctx.dataset.task != ctx.task:
        return [skipped("train-eval-gap", f"the dataset is of {ctx.dataset.task}, not {ctx.task}")]
    states = [np.asarray(e.attrs["initial_state"]) for e in ctx.episodes if "initial_state" in e.attrs]
    if not states:
        return [skipped("train-eval-gap", "the demos carry no initial_state attribute")]
    n = ctx.eval_episodes
    policy = ctx.policy.closed_loop_policy()
    like_data = evaluate(policy, ctx.task, n, seed=ctx.seed, progress=False,
                         initial_states=states[:n]).summary
    random = evaluate(policy, ctx.task, n, seed=ctx.seed, progress=False).summary
    train_loss = ctx.policy.training_info().get("train_loss")
    gap = like_data["success_rate"] - random["success_rate"]
    p_value = gap_p_value(like_data["successes"], like_data["episodes"], random["successes"], random["episodes"])
    evidence = {"episodes_each": n, "train_loss": train_loss,
                "success_from_demo_initial_states": like_data["success_rate"],
                "ci95_demo_states": like_data["success_ci95"],
                "success_from_random_initial_states": random["success_rate"],
                "ci95_random_states": random["success_ci95"], "gap": round(gap, 3),
                "p_value": round(p_value, 4),
                "distinct_demo_states_used": len({tuple(np.round(s, 4)) for s in states[:n]})}
    loss_text = f" with training loss {train_loss:.4f}" if train_loss is not None else ""
    if gap >= 0.3 and like_data["success_rate"] >= 0.5:
        if p_value > GAP_P_VALUE:
            return [Finding(
                "train-eval-gap", "warning",
                f"the policy succeeds {100 * like_data['success_rate']:.0f}% from the demos' initial "
                f"states and {100 * random['success_rate']:.0f}% from random ones, over {n} episodes "
                f"each: a gap so few episodes cannot confirm (p = {p_value:.2f}, one-sided Fisher test)",
                evidence, f"Run the check with more episodes (--episodes {max(4 * n, 20)}) before acting "
                "on it; the gap may be the episodes' noise.")]
        advice = memorisation_fix(evidence["distinct_demo_states_used"],
                                  policy.config if ctx.policy.origin == "vlascope" else None)
        return [Finding(
            "train-eval-gap", "error",
            f"the policy succeeds {100 * like_data['success_rate']:.0f}% from the demos' initial "
            f"states but {100 * random['success_rate']:.0f}% from random ones{loss_text}: it "
            "memorised the training scenes",
            {**evidence, "advice": advice.change, "suggested_config": advice.config}, advice.text)]
    if like_data["success_rate"] < 0.5:
        return [Finding(
            "train-eval-gap", "warning",
            f"the policy fails even from the demos' own initial states "
            f"({100 * like_data['success_rate']:.0f}% success{loss_text}): not a distribution gap",
            evidence, "Look at the open-loop, mode-collapse and overfit findings: the policy has "
            "not learned the demonstrated behaviour.")]
    return [ok("train-eval-gap", f"success {100 * like_data['success_rate']:.0f}% from demo states, "
               f"{100 * random['success_rate']:.0f}% from random ones", evidence)]


@dataclass(frozen=True)
class Advice:
    """What to change, as a structured suggestion (`config`: the --config YAML sections to try,
    empty where the change is in the data) and the text a person reads."""

    change: str  # "collect-diverse-demos" | "aux-target" | "state-noise" | "noise-off-goal" |
    #              "larger-batch-or-more-demos" | "inputs-that-carry-the-scene"
    config: dict
    text: str


RESULTS_PAGE = "benchmarks/README.md"


def memorisation_fix(distinct_demo_states: int, config=None) -> Advice:
    """What to change for a policy that replays its demos and fails elsewhere: more diverse
    demos when they share a start; when they do not, make the policy read the scene. `config`:
    a vlascope policy config, whose options the advice can name; None for a foreign policy.
    The figures behind each suggestion are on the results page, not here."""
    if distinct_demo_states < 3:
        return Advice("collect-diverse-demos", {},
                      "A low training loss says nothing about states the demos never visited. Collect "
                      "demos from randomised initial states (see initial-state-diversity and eval-coverage).")
    text = (f"The demos start from {distinct_demo_states} distinct states, so the policy learned "
            "which demo it is in (a goal, a hand path: keys unique to each demo) rather than what "
            "differs between scenes.")
    if config is None:
        return Advice("inputs-that-carry-the-scene", {},
                      text + " Give it the inputs that carry the scene (see observability), regularise "
                      "it (noise on the state inputs, dropout, weight decay), or collect more demos.")
    if config.image_keys and not config.aux_keys:
        return Advice("aux-target", {"policy": {"aux_keys": ["object_state"]}},
                      text + " It does not find the object in its camera: train with an auxiliary "
                      "object-position target (`vlascope train --aux-keys object_state`), which makes "
                      f"it localise the object, or with more demos (measured effect: {RESULTS_PAGE}).")
    # Noise on the goal blurs where to place, so the noise goes on the other state inputs.
    hand_keys = [k for k in config.obs_keys if k not in config.image_keys + ["goal"]] \
        if "goal" in config.obs_keys else []
    noisy_goal = "goal" in config.obs_keys and (not config.obs_noise_keys or "goal" in config.obs_noise_keys)
    if config.image_keys and not config.obs_noise:
        policy = {"obs_noise": 0.4, **({"obs_noise_keys": hand_keys} if hand_keys else {})}
        if "dropout" in {f.name for f in fields(config)}:  # only ACT and the VLA have a dropout to raise
            policy["dropout"] = 0.3
        return Advice("state-noise", {"policy": policy, "train": {"weight_decay": 0.01, "batch_size": 256}},
                      text + " It already learns the object position from its camera as an auxiliary "
                      "target: hide which demo it is in with noise on the state inputs (off the goal, "
                      "which it must place at), regularise, and train on more samples per step (the "
                      f"--config sections in this finding's evidence), or collect more demos ({RESULTS_PAGE}).")
    if config.image_keys and noisy_goal and hand_keys:
        return Advice("noise-off-goal", {"policy": {"obs_noise_keys": hand_keys}},
                      text + " Its state-input noise also blurs the goal it must place at: keep the "
                      f"noise on {', '.join(hand_keys)} only ({RESULTS_PAGE}).")
    if config.image_keys:
        return Advice("larger-batch-or-more-demos", {"train": {"batch_size": 256}},
                      text + " It already learns the object position from its camera and trains with "
                      "noise on its state inputs: train on more samples per step, or collect more "
                      f"demos ({RESULTS_PAGE}).")
    return Advice("inputs-that-carry-the-scene", {},
                  text + " Give the policy the inputs that carry the scene (see observability), or more demos.")


def check_sweep_tracking(ctx: DoctorContext) -> list[Finding]:
    path = ctx.run_dir / "sweep.json" if ctx.run_dir else None
    if path is None or not path.exists():
        return [skipped("sweep-tracking", "no sweep.json in the run: `vlascope sweep RUN_DIR --task T`")]
    rows = json.loads(path.read_text())["rows"]
    result = tracking(rows)
    evidence = {"sweep": str(path), **result,
                "rows": [{k: r.get(k) for k in ("step", "train_loss", "avg_reward", "success_rate")}
                         for r in rows]}
    findings = []
    if result["reward_tracks_success"] is False:
        findings.append(Finding(
            "sweep-tracking", "warning",
            f"average reward does not track success across checkpoints (Spearman "
            f"{result['reward_success_spearman']:.2f})", evidence,
            "Select checkpoints by success rate, not by dense reward: the reward can be farmed "
            "(hovering near the goal) without completing the task."))
    if result["loss_tracks_success"] is False:
        findings.append(Finding(
            "sweep-tracking", "warning",
            f"training loss does not track success across checkpoints (Spearman "
            f"{result['loss_success_spearman']:.2f}: lower loss did not mean more success)",
            evidence, "Do not pick checkpoints by training loss; evaluate them closed-loop."))
    if findings:
        return findings
    if result["reward_tracks_success"] is None and result["loss_tracks_success"] is None:
        return [Finding("sweep-tracking", "info", f"undecidable: {result.get('reason')}", evidence)]
    return [ok("sweep-tracking", "reward and loss rank the checkpoints like success does", evidence)]


ROLLOUT_CHECKS = [check_train_eval_gap, check_sweep_tracking]
