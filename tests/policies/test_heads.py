"""Each head must be able to learn a conditional mapping: two conditions, two distinct chunks."""

import pytest
import torch

from vlascope.policies.blocks.denoisers import MLPDenoiser
from vlascope.policies.blocks.heads import DiffusionHead, FlowHead, RegressionHead, cosine_betas


def test_cosine_schedule_is_monotone_and_bounded():
    betas = cosine_betas(100)
    ab = torch.cumprod(1 - betas, 0)
    assert (betas > 0).all() and (betas <= 0.999).all()
    assert (ab[1:] < ab[:-1]).all() and ab[0] > 0.99 and ab[-1] < 1e-3


def test_flow_time_is_one_minus_beta_and_drawn_on_the_chunks_device():
    torch.manual_seed(0)
    head = FlowHead(MLPDenoiser(2, 4, 2, width=8, depth=1), time_sampling="beta")
    t = head.sample_time(200_000, "cpu")
    assert t.device.type == "cpu" and 0 <= t.min() and t.max() <= 1
    # 1 - t ~ Beta(1.5, 1): CDF x^1.5, mean 0.6, variance 1.5 / (2.5^2 * 3.5).
    x = 1 - t
    for q in (0.1, 0.3, 0.5, 0.7, 0.9):
        assert abs(float((x <= q).float().mean()) - q ** 1.5) < 0.005
    assert abs(float(x.mean()) - 0.6) < 0.003 and abs(float(x.var()) - 1.5 / (2.5 ** 2 * 3.5)) < 0.002
    # Every op runs on the chunk's device: a draw elsewhere, copied over, would sync every step.
    from torch.utils._python_dispatch import TorchDispatchMode

    class Devices(TorchDispatchMode):
        seen = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for o in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(o, torch.Tensor):
                    self.seen.add(o.device.type)
            return out

    with Devices() as mode:
        head.sample_time(4, "meta")
    assert mode.seen == {"meta"}


@pytest.mark.parametrize("kind", ["diffusion", "flow", "mse"])
def test_head_learns_two_modes_by_condition(kind):
    torch.manual_seed(0)
    cond = torch.eye(2).repeat(64, 1)  # (128, 2): alternating conditions
    target = torch.stack([torch.full((4, 2), 0.8), torch.full((4, 2), -0.5)]).repeat(64, 1, 1)
    if kind == "mse":
        head = RegressionHead(2, 4, 2, width=64)
    else:
        net = MLPDenoiser(2, 4, 2, width=64, depth=2)
        head = DiffusionHead(net, 100, 10) if kind == "diffusion" else FlowHead(net, 10)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(300):  # samples land within 0.13 of their mode by then (seeds 0-3)
        loss = head.loss(cond, target).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    sample = head.sample(torch.eye(2), torch.randn(2, 4, 2, generator=torch.Generator().manual_seed(0)))
    assert (sample[0] - 0.8).abs().max() < 0.25, sample[0]
    assert (sample[1] + 0.5).abs().max() < 0.25, sample[1]
