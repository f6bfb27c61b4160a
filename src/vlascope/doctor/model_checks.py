"""Checks that build, train or run the policy: normaliser, initial loss, dead parameters,
conditioning, head isolation, overfitting, open-loop error and mode collapse."""

from __future__ import annotations

import copy
import shutil

import numpy as np
import torch

from vlascope.doctor.context import DoctorContext
from vlascope.doctor.findings import Finding, ok, rounded, skipped
from vlascope.doctor.head_isolation import fit_synthetic
from vlascope.doctor.plots import (plot_action_histograms, plot_bars, plot_error_histograms,
                                   plot_loss_curves, plot_scatter, plot_timeseries)
from vlascope.evaluate.sweep import read_loss_log
from vlascope.policies.blocks.heads import DiffusionHead, FlowHead
from vlascope.train.loop import TrainConfig, fit, lr_lambda, make_windows

# A normaliser that multiplies a dimension by more than this amplifies float noise and small
# drifts into huge inputs (reach-v3's gripper reading at std 0.0012 was scaled x860).
MAX_SCALE = 100.0
# Open-loop error in units of the action's std. 0.1 is what a pipeline that works reaches when
# it overfits 5 demos; a policy that misses by 0.3 std on its own training data is not fitted.
OVERFIT_RELATIVE_ERROR = 0.1
TRAIN_RELATIVE_ERROR = 0.3
# Head isolation asks whether the head can learn a map at all: a head that ignores its condition
# lands near 0.8 target std (the spread of the targets), one that learns it well below 0.25.
ISOLATION_RELATIVE_ERROR = 0.25


def training_budget(policy) -> dict:
    """(steps, batch) for the overfit and head-isolation fits. The 1-D U-Net costs ~0.1 s a step
    on 2 CPU cores whatever the batch (the MLP heads ~0.02 s at batch 256), so it gets more,
    smaller steps: measured on pick-place, 2 cores, overfit 3000x32 -> 0.06 action std in 350 s,
    head isolation 1000x50 -> 0.13 in 150 s."""
    if getattr(policy.config, "denoiser", None) == "unet" and isinstance(getattr(policy, "head", None), DiffusionHead):
        return {"overfit": (2500, 32), "isolation": (1000, 50)}
    return {"overfit": (1500, 256), "isolation": (1500, 100)}


def warm_up(ctx: DoctorContext, policy, batch: dict, steps: int = 30) -> tuple[list, list]:
    """A few steps of the training recipe (AdamW, warm-up, grad-norm clipping at 1).

    Where a bad init or an unclipped gradient shows; and it moves the zero-initialised output
    layers, without which nothing upstream of them would get a gradient or move the output.
    """
    trainable = [p for p in policy.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-3, weight_decay=1e-6)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(10, steps))
    policy.train()
    losses, grad_norms = [], []
    for _ in range(steps):
        loss, _ = policy.compute_loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norms.append(float(torch.nn.utils.clip_grad_norm_(trainable, 1.0)))
        opt.step()
        sched.step()
        losses.append(loss.item())
        if not np.isfinite(losses[-1]):
            break
    opt.zero_grad(set_to_none=True)
    policy.eval()
    return losses, grad_norms


def policy_under_test(ctx: DoctorContext) -> tuple[torch.nn.Module, str]:
    """The trained policy if there is one, else the pipeline's policy after a few steps."""
    if ctx.policy is not None:
        return ctx.policy, "the checkpoint"
    if "warm_policy" not in ctx.cache:
        policy = ctx.fresh_policy()
        warm_up(ctx, policy, sample_batch(ctx, policy, ctx.episodes, 256, ctx.seed))
        ctx.cache["warm_policy"] = policy
    return ctx.cache["warm_policy"], "a fresh policy after 30 training steps"


def sample_batch(ctx: DoctorContext, policy, episodes, max_windows: int | None = None,
                 seed: int = 0) -> dict:
    """Up to `max_windows` random training windows of `episodes`; all, in time order, for None."""
    task = ctx.task_index()
    # Every check samples from the same few episode lists: stack their windows once (for image
    # datasets that is hundreds of MB), keyed by the episodes and the window shape.
    cfg = policy.config
    key = ("windows", tuple(map(id, episodes)), tuple(cfg.obs_keys), cfg.n_obs_steps, cfg.horizon)
    if key not in ctx.cache:
        ctx.cache[key] = make_windows(policy, episodes, [task] * len(episodes), ctx.device)
    windows = ctx.cache[key]
    if max_windows is None:
        return windows
    n = len(windows["action"])
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_windows].to(ctx.device)
    return {"obs": {k: v[idx] for k, v in windows["obs"].items()}, "action": windows["action"][idx],
            "task_index": windows["task_index"][idx]}


@torch.no_grad()
def predict(policy, batch: dict, seed: int = 0, batch_size: int = 512) -> np.ndarray:
    policy.eval()
    generator = torch.Generator(device=batch["action"].device).manual_seed(seed)
    out = []
    for i in range(0, len(batch["action"]), batch_size):
        obs = {k: v[i:i + batch_size] for k, v in batch["obs"].items()}
        out.append(policy.predict_chunk(obs, batch["task_index"][i:i + batch_size], generator)
                   .float().cpu().numpy())
    return np.concatenate(out)


def expected_initial_loss(policy, batch: dict) -> float:
    """What the objective scores for a zero output: where a well-initialised net starts."""
    target = policy.normalizer.normalize("action", batch["action"]).float()
    head = getattr(policy, "head", None)
    if isinstance(head, DiffusionHead):  # zero for unit Gaussian noise, or for the chunk
        return 1.0 if head.prediction == "epsilon" else float((target ** 2).mean())
    if isinstance(head, FlowHead):
        return 1.0 + float((target ** 2).mean())  # velocity x1 - noise
    if getattr(policy.config, "kl_weight", None) is not None:
        return float(target.abs().mean())  # ACT: L1, and a KL term that starts at zero
    return float((target ** 2).mean())  # direct regression


def check_normalization(ctx: DoctorContext) -> list[Finding]:
    policy = ctx.policy if ctx.policy is not None else ctx.fresh_policy()
    source = ("the checkpoint's normaliser" if ctx.policy is not None
              else "the normaliser the pipeline builds from this dataset")
    norm = policy.normalizer
    findings, table = [], {}
    for key in norm.keys:
        data = (np.concatenate([e.actions for e in ctx.episodes]) if key == "action"
                else np.concatenate([e.obs[key] for e in ctx.episodes]) if key in ctx.episodes[0].obs
                else None)
        if data is None or data.dtype == np.uint8:
            continue
        scale = norm.stat(key, "scale").cpu().numpy().astype(np.float64)
        offset = norm.stat(key, "offset").cpu().numpy().astype(np.float64)
        std_ckpt = norm.stat(key, "std").cpu().numpy().astype(np.float64)
        std_data, mean_data = data.std(0), data.mean(0)
        normed = data * scale + offset
        table[key] = {"scale": rounded(scale), "std_in_normaliser": rounded(std_ckpt, 6),
                      "std_in_dataset": rounded(std_data, 6),
                      "normalised_abs_max": rounded(np.abs(normed).max(0), 2)}
        for d in np.nonzero(scale > MAX_SCALE)[0]:
            findings.append(Finding(
                "normalization", "error",
                f"{key} dim {d} is scaled x{scale[d]:.3g} by {source} (its std "
                f"there is {std_ckpt[d]:.3g}): a drift of 0.01 becomes {0.01 * scale[d]:.3g} units",
                {"key": key, "dim": int(d), "scale": float(scale[d]), "std_in_normaliser": float(std_ckpt[d]),
                 "std_in_dataset": float(std_data[d]),
                 "normalised_range_in_dataset": [float(normed[:, d].min()), float(normed[:, d].max())]},
                "Floor the std used for normalisation (vlascope centres a dimension whose std is "
                "below `norm_floor`, 1e-2 by default, instead of dividing by it), or drop the "
                "dimension from the policy's inputs."))
        # Statistics from other data: the centre the normaliser uses is far from this dataset's.
        shift = np.abs(mean_data * scale + offset)
        if key != "action" and norm.modes.get(key) == "meanstd" and ctx.policy is not None:
            far = [int(d) for d in np.nonzero((shift > 3) & (scale <= MAX_SCALE))[0]]
            if far:
                findings.append(Finding(
                    "normalization", "warning",
                    f"{key} dims {far} of this dataset sit {shift[far].max():.1f} std from the "
                    "checkpoint normaliser's mean: its statistics come from other data",
                    {"key": key, "dims": far, "normalised_mean": rounded(shift[far], 2)},
                    "Compute normalisation statistics on the data the policy is trained and "
                    "evaluated on, and save them with the checkpoint."))
    ctx.statistics["normaliser"] = table
    return findings or [ok("normalization", f"no dimension is amplified more than x{MAX_SCALE:.0f} by "
                           f"{source}", {"per_key": table})]


def check_init_loss(ctx: DoctorContext) -> list[Finding]:
    policy = ctx.fresh_policy()
    batch = sample_batch(ctx, policy, ctx.episodes, 256, ctx.seed)
    expected = expected_initial_loss(policy, batch)
    policy.train()
    torch.manual_seed(ctx.seed)
    with torch.no_grad():
        initial = float(np.mean([policy.compute_loss(batch)[0].item() for _ in range(4)]))
    losses, grad_norms = warm_up(ctx, policy, batch)
    ctx.cache["warm_policy"] = policy
    evidence = {"objective": type(policy.head).__name__, "loss_at_step_0": round(initial, 4),
                "expected_at_step_0": round(expected, 4), "ratio": round(initial / expected, 2),
                "max_loss_first_30_steps": round(max(losses), 4), "loss_after_30_steps": round(losses[-1], 4),
                "grad_norm_at_step_0": round(grad_norms[0], 3)}
    curves = {"fresh policy, first 30 steps": (list(range(1, len(losses) + 1)), losses)}
    logged = list(read_loss_log(ctx.run_dir).items()) if ctx.run_dir else []
    if logged:
        evidence["run_first_logged_loss"] = {"step": logged[0][0], "loss": logged[0][1]}
        curves["the checkpoint's run"] = ([s for s, _ in logged], [v for _, v in logged])
    plot = plot_loss_curves(ctx, curves, "init_loss", expected, "loss at the start of training")
    findings = []
    if not np.isfinite(initial) or initial > 3 * expected:
        findings.append(Finding(
            "init-loss", "error",
            f"loss at step 0 is {initial:.4g}, {initial / expected:.0f}x the {expected:.2f} this "
            f"objective gives for a zero output: the output layer does not start near zero",
            evidence,
            "Initialise the last layer of the action head to zero (or small), as vlascope's heads "
            "do; keep gradient-norm clipping (never clip the loss: it hides the exploding "
            "gradients instead of bounding them).", [plot]))
    elif not np.isfinite(max(losses)) or max(losses) > 10 * expected:
        findings.append(Finding(
            "init-loss", "error",
            f"the loss explodes in the first steps (max {max(losses):.4g} against {expected:.2f} at a "
            "zero output)", evidence,
            "Lower the learning rate or lengthen the warm-up; clip the gradient norm (1.0).", [plot]))
    if logged and logged[0][1] > 10 * expected:
        findings.append(Finding(
            "init-loss", "error",
            f"the checkpoint's run logged loss {logged[0][1]:.4g} at step {logged[0][0]}, over 10x "
            f"the {expected:.2f} a zero-initialised output starts from",
            evidence, "Check the initialisation of the run that produced the checkpoint, and that "
            "its gradient norm was clipped.", [plot]))
    return findings or [ok("init-loss", f"loss at step 0 is {initial:.3f}, as expected for the "
                           f"objective ({expected:.3f}); no explosion in the first 30 steps",
                           evidence, [plot])]


def _module_of(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name


@torch.no_grad()
def _output_moves(policy, batch, module_names: list[str], seed: int) -> dict[str, float]:
    """Relative change of the predicted chunk when each module's parameters are perturbed."""
    base = torch.from_numpy(predict(policy, batch, seed))
    params = dict(policy.named_parameters())
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
        warm_up(ctx, policy, sample_batch(ctx, policy, ctx.episodes, 256, ctx.seed))
        which = "a copy of the checkpoint after 30 training steps"
    named = list(policy.named_parameters())
    trainable = [(n, p) for n, p in named if p.requires_grad]
    frozen = sum(p.numel() for n, p in named if not p.requires_grad)
    policy.train()
    policy.zero_grad(set_to_none=True)
    torch.manual_seed(ctx.seed)
    for _ in range(2):
        policy.compute_loss(batch)[0].backward()
    no_grad = [n for n, p in trainable if p.grad is None]
    zero_grad = [n for n, p in trainable if p.grad is not None and not p.grad.abs().max() > 0]
    policy.zero_grad(set_to_none=True)
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


def check_conditioning(ctx: DoctorContext) -> list[Finding]:
    policy, which = policy_under_test(ctx)
    with torch.no_grad():
        return _conditioning(ctx, policy, which)


def _conditioning(ctx: DoctorContext, policy, which: str) -> list[Finding]:
    policy.eval()
    batch = sample_batch(ctx, policy, ctx.episodes, 256, ctx.seed + 1)
    cond = policy.encode(batch["obs"], batch["task_index"]).float().flatten(1)
    unit = torch.nn.functional.normalize(cond, dim=-1)
    cos = unit @ unit.T
    n = len(cond)
    offdiag = cos[~torch.eye(n, dtype=torch.bool, device=cos.device)]
    spread = (cond - cond.mean(0)).norm(dim=-1).mean()
    relative_spread = float(spread / (cond.mean(0).norm() + 1e-12))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(ctx.seed)).to(cond.device)
    sensitivity, varies = {}, {}
    for key in policy.config.obs_keys:
        x = batch["obs"][key]
        varies[key] = bool((x.float() - x[perm].float()).abs().max() > 0)
        shuffled = {**batch["obs"], key: x[perm]}
        moved = policy.encode(shuffled, batch["task_index"]).float().flatten(1)
        sensitivity[key] = float((moved - cond).norm(dim=-1).mean() / (spread + 1e-12))
    evidence = {"examined": which, "samples": n,
                "mean_pairwise_cosine": round(float(offdiag.mean()), 4),
                "min_pairwise_cosine": round(float(offdiag.min()), 4),
                "relative_spread": round(relative_spread, 4),
                "sensitivity_per_input": {k: round(v, 4) for k, v in sensitivity.items()},
                "input_varies_in_data": varies}
    plot = plot_bars(ctx, sensitivity, "conditioning",
                     "change of the condition vector when one input is shuffled\n(relative to its spread across samples)",
                     threshold=1e-3)
    ignored = [k for k in sensitivity if varies[k] and sensitivity[k] < 1e-3]
    findings = []
    backbone = getattr(policy, "backbone", None)
    if backbone is not None:
        findings += _backbone_spread(policy, backbone, batch, evidence, plot)
    if ignored:
        findings.append(Finding(
            "conditioning", "error",
            f"the condition vector ignores {', '.join(ignored)}: shuffling it across samples "
            f"changes the condition by {max(sensitivity[k] for k in ignored):.1e} of its spread",
            evidence,
            "That input never reaches the action head: check the encoder's forward pass uses it "
            "(a branch computed but dropped, features multiplied by a zero gate, a detached or "
            "frozen encoder whose output is constant). Only the other inputs condition the policy.",
            [plot]))
    if evidence["mean_pairwise_cosine"] > 0.99 and relative_spread < 0.02:
        findings.append(Finding(
            "conditioning", "warning",
            f"condition vectors are nearly identical across samples (mean cosine "
            f"{evidence['mean_pairwise_cosine']:.4f}, spread {100 * relative_spread:.1f}% of their norm)",
            evidence,
            "The head sees an almost constant condition, so it can only learn the average action. "
            "A frozen backbone often does this: normalise or project its features (LayerNorm + "
            "a trained projector), fine-tune it (LoRA), or pool more informative tokens.", [plot]))
    return findings or [ok("conditioning", f"every varying input moves the condition vector "
                           f"(smallest effect {min(sensitivity.values()):.3f} of its spread)",
                           evidence, [plot])]


# A frozen backbone whose pooled output barely differs between samples conditions nothing:
# the action expert can only read the proprio token (the "99.7% identical VLM embeddings" case).
BACKBONE_COSINE = 0.99


def _backbone_spread(policy, backbone, batch: dict, evidence: dict, plot: str) -> list[Finding]:
    inputs = policy.inputs(batch["obs"], batch["task_index"])
    tokens, padding = backbone(inputs)
    if tokens.shape[1] == 0:
        return []
    keep = torch.ones(tokens.shape[:2], device=tokens.device) if padding is None else (~padding).float()
    pooled = (tokens.float() * keep[..., None]).sum(1) / keep.sum(1, keepdim=True)
    unit = torch.nn.functional.normalize(pooled, dim=-1)
    cos = unit @ unit.T
    offdiag = cos[~torch.eye(len(cos), dtype=torch.bool, device=cos.device)]
    frozen = not any(p.requires_grad for p in backbone.parameters())
    evidence["backbone"] = {"frozen": frozen, "mean_pairwise_cosine_of_pooled_tokens":
                            round(float(offdiag.mean()), 4), "tokens": int(tokens.shape[1])}
    if frozen and float(offdiag.mean()) > BACKBONE_COSINE:
        return [Finding(
            "conditioning", "warning",
            f"the frozen backbone gives nearly the same features for every sample (mean cosine "
            f"{float(offdiag.mean()):.4f} of its pooled tokens): the action expert is left with "
            "the proprio input", evidence,
            "Let the backbone adapt (backbone_mode: lora or full), or read its per-token outputs "
            "through a trained projector with LayerNorm rather than a pooled vector; check the "
            "images reach it at a resolution where the scene differences survive.", [plot])]
    return []


def check_head_isolation(ctx: DoctorContext) -> list[Finding]:
    if ctx.quick:
        return [skipped("head-isolation", "--quick")]
    policy = ctx.fresh_policy()
    cfg = policy.config
    if not hasattr(policy, "head") or not hasattr(cfg, "cond_dim"):
        return [skipped("head-isolation", f"{type(policy).__name__} has no separable action head "
                        "(its decoder reads the encoder's tokens directly)")]
    head = copy.deepcopy(policy.head)
    steps, batch = training_budget(policy)["isolation"] if ctx.device.type == "cpu" else (3000, 100)
    # Targets in [-1, 1] like min-max normalised actions (a diffusion head clamps to that range).
    result = fit_synthetic(head, cfg.cond_dim, (cfg.horizon, cfg.action_dim), n_conditions=100,
                           steps=steps, batch_size=batch, lr=1e-3, seed=ctx.seed, device=str(ctx.device),
                           targets="uniform")
    steps, losses = zip(*result["loss_curve"])
    plot = plot_loss_curves(ctx, {"head alone, synthetic pairs": (list(steps), list(losses))},
                            "head_isolation", title="head isolation: 100 random conditions -> random chunks")
    evidence = {"head": type(head).__name__, "conditions": 100, "cond_dim": cfg.cond_dim,
                "target_shape": [cfg.horizon, cfg.action_dim], "steps": result["steps"],
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
    if ctx.quick:
        return [skipped("overfit", "--quick")]
    n = ctx.overfit_demos
    if len(ctx.episodes) < n:
        return [skipped("overfit", f"needs {n} demos, the dataset has {len(ctx.episodes)}")]
    demos, held = ctx.episodes[:n], ctx.episodes[n:2 * n]
    policy = ctx.fresh_policy(demos)
    steps, batch = training_budget(policy)["overfit"] if ctx.device.type == "cpu" else (3000, 256)
    cfg = TrainConfig(steps=steps, batch_size=batch, warmup_steps=50, ckpt_every=0, log_every=25,
                      seed=ctx.seed, device=str(ctx.device))
    run_dir = ctx.out_dir / "overfit"
    result = fit(policy, ctx.policy_name, demos, [ctx.task_index()] * n, run_dir, cfg, progress=False)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # the losses are what we keep
    trained = result.ema
    ctx.cache["overfit_policy"] = trained
    action_std = np.concatenate([e.actions for e in demos]).std(0)
    train_batch = sample_batch(ctx, trained, demos, 2000, ctx.seed)
    on_train = open_loop_errors(train_batch["action"].cpu().numpy(), predict(trained, train_batch, ctx.seed),
                                action_std)
    evidence = {"demos": n, "steps": cfg.steps, "batch_size": cfg.batch_size,
                "seconds": round(result.seconds, 1), "final_loss": round(result.final_loss, 5),
                "train": _rounded(on_train)}
    if held:
        held_batch = sample_batch(ctx, trained, held, 2000, ctx.seed)
        evidence["held_out"] = _rounded(open_loop_errors(
            held_batch["action"].cpu().numpy(), predict(trained, held_batch, ctx.seed), action_std))
    logged = read_loss_log(run_dir)
    plot = plot_loss_curves(ctx, {f"overfit {n} demos": (list(logged), list(logged.values()))}, "overfit_loss",
                            title=f"overfitting {n} demos ({ctx.policy_name})")
    rel = on_train["mean_relative_error"]
    if rel > OVERFIT_RELATIVE_ERROR:
        return [Finding(
            "overfit", "error",
            f"the pipeline cannot overfit {n} demos: after {cfg.steps} steps its actions miss by "
            f"{rel:.2f} action std on the demos it trained on (final loss {result.final_loss:.4f})",
            evidence,
            "A pipeline that cannot memorise 5 demos has a bug upstream of data quantity: look at "
            "the failing checks above (conditioning, dead parameters, normalisation, head "
            "isolation). A low flow/diffusion loss is not a low action error: judge by this "
            "number.", [plot])]
    return [ok("overfit", f"the pipeline overfits {n} demos in {cfg.steps} steps: open-loop error "
               f"{rel:.3f} action std (loss {result.final_loss:.4f})", evidence, [plot])]


def check_open_loop(ctx: DoctorContext) -> list[Finding]:
    """open-loop and mode-collapse: the checkpoint's predictions against the demos."""
    if ctx.policy is None:
        return [skipped("open-loop", "needs --checkpoint"), skipped("mode-collapse", "needs --checkpoint")]
    policy = ctx.policy
    action_std = np.concatenate([e.actions for e in ctx.episodes]).std(0)
    sets = {"train": ctx.episodes}
    if ctx.cache.get("held_out_episodes"):
        sets["held_out"] = ctx.cache["held_out_episodes"]
    results = {}
    for name, episodes in sets.items():
        batch = sample_batch(ctx, policy, episodes, 2000 if not ctx.quick else 500, ctx.seed)
        truth = batch["action"].cpu().numpy()
        pred = predict(policy, batch, ctx.seed)
        results[name] = open_loop_errors(truth, pred, action_std)
        ctx.arrays[f"{name}_truth"], ctx.arrays[f"{name}_predicted"] = truth, pred
    # One whole demo, step by step, for the time-series plot.
    demo = ctx.episodes[0]
    demo_batch = sample_batch(ctx, policy, [demo])
    demo_truth = demo_batch["action"].cpu().numpy()
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
    if "held_out" not in results:
        evidence["held_out"] = "none: pass --task to roll the expert out on evaluation seeds"
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
        held = results["held_out"]["mean_relative_error"]
        if held > TRAIN_RELATIVE_ERROR and held > 2 * rel:
            findings.append(Finding(
                "open-loop", "warning",
                f"open-loop error is {held:.2f} action std on held-out demos against {rel:.2f} on "
                "training demos: the policy does not generalise to new initial states",
                evidence, "Collect more diverse demos, add observation-noise augmentation, or use "
                "a smaller model / stronger regularisation.", plots))
    if not findings:
        findings.append(ok("open-loop", f"first-action error {rel:.3f} action std on training demos"
                           + (f", {results['held_out']['mean_relative_error']:.3f} held out"
                              if "held_out" in results else ""), evidence, plots))
    findings += _mode_collapse(train, action_std, plots[1:2])
    return findings


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
                check_head_isolation, check_overfit, check_open_loop]
