"""Head isolation: train the action head alone on synthetic (condition -> target) pairs.

If a head cannot memorise a fixed map from a handful of random conditions to random chunks,
nothing upstream (encoder, data, normalisation) can be blamed for a policy that does not learn:
the fault is the head's objective, sampler, architecture or optimiser settings. Random targets
leave no structure to exploit, and with one target per condition the optimal loss is 0 for every
head here (once the net knows x1, x_t gives away the noise, hence the flow velocity and the
diffusion noise), so what remains after training is the head's own failure to fit.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from vlascope.optim import adamw, warmup_cosine


def synthetic_pairs(cond_dim: int, chunk_shape: tuple[int, int], n_conditions: int = 100,
                    seed: int = 0, targets: str = "normal") -> tuple[torch.Tensor, torch.Tensor]:
    """(n, cond_dim) standard-normal conditions and (n, *chunk_shape) targets, standard normal or
    uniform in [-1, 1] (`targets="uniform"`: the range of min-max normalised actions, which a
    diffusion head clamps its samples to)."""
    g = torch.Generator().manual_seed(seed)
    cond = torch.randn(n_conditions, cond_dim, generator=g)
    if targets == "uniform":
        return cond, torch.rand(n_conditions, *chunk_shape, generator=g) * 2 - 1
    return cond, torch.randn(n_conditions, *chunk_shape, generator=g)


def fit_synthetic(head: nn.Module, cond_dim: int, chunk_shape: tuple[int, int], n_conditions: int = 100,
                  steps: int = 3000, batch_size: int = 100, lr: float = 1e-3, warmup: int = 100,
                  seed: int = 0, device: str = "cpu", schedule: str = "cosine",
                  targets: str = "normal", max_seconds: float | None = None) -> dict:
    """Train `head` (its own `loss`) on `n_conditions` random pairs; say how well it fitted.
    Stops after `max_seconds` of this process's CPU time if given (the steps done are reported).

    Reseeds torch's global RNG with `seed`: the heads draw their time and noise from it.
    """
    torch.manual_seed(seed)
    cond, target = (a.to(device) for a in synthetic_pairs(cond_dim, chunk_shape, n_conditions, seed,
                                                                   targets))
    head = head.to(device).train()
    # No weight decay: the task is pure memorisation and decay only pulls against it.
    opt = adamw(head.parameters(), lr=lr, weight_decay=0.0)
    # Decaying the lr is what takes the loss off its noisy plateau (the results page's head
    # isolation study); "constant" only reproduces reference pipelines.
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, warmup_cosine(warmup, steps) if schedule == "cosine" else lambda step: 1.0)

    g = torch.Generator().manual_seed(seed + 1)
    losses, curve = [], []
    every = max(steps // 120, 1)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for step in range(steps):
        # Without replacement when the batch fits, so a full batch sees every condition once.
        idx = (torch.randperm(n_conditions, generator=g)[:batch_size] if batch_size <= n_conditions
               else torch.randint(n_conditions, (batch_size,), generator=g)).to(device)
        loss = head.loss(cond[idx], target[idx]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % every == 0 or step == steps - 1:
            curve.append((step, losses[-1]))
        if max_seconds is not None and time.process_time() - cpu0 > max_seconds:
            curve.append((step, losses[-1]))
            break
    seconds = time.perf_counter() - t0

    # The loss averages over random times and noise; whether the sampler lands on each condition's
    # target is what a policy needs, so measure that too, in units of the targets' spread.
    head.eval()
    noise = torch.randn((len(cond), *chunk_shape), device=device,
                        generator=torch.Generator(device=device).manual_seed(seed))
    sample = head.sample(cond, noise)
    relative_error = ((sample - target).abs().mean() / target.std()).item()
    tail = losses[-min(100, steps):]
    return {"final_loss": sum(tail) / len(tail), "loss_curve": curve, "relative_error": relative_error,
            "first_loss": losses[0], "seconds": seconds, "steps": len(losses)}
