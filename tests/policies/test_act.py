import numpy as np
import pytest
import torch

from tests.conftest import TINY_ACT
from tests.policies.test_policies import OBS_DIMS, _batch, _policy
from vlascope.policies.blocks.execution import ChunkExecutor


def test_receding_horizon_executes_the_first_steps_then_replans():
    ex = ChunkExecutor(n_action_steps=3)
    chunk = np.arange(8, dtype=float)[:, None]
    taken, queries = [], 0
    for _ in range(7):
        if ex.needs_chunk():
            ex.push(chunk + 100 * queries)
            queries += 1
        taken.append(float(ex.pop()[0]))
    assert taken == [0, 1, 2, 100, 101, 102, 200] and queries == 3


def test_temporal_ensembling_averages_live_chunks_oldest_weighted_most():
    coeff = 0.5
    ex = ChunkExecutor(n_action_steps=1, temporal_ensemble=coeff)
    # Chunk k predicts value 10 * k for every step: at step t the live chunks are 0..t.
    taken = []
    for k in range(3):
        assert ex.needs_chunk()
        ex.push(np.full((4, 1), 10.0 * k))
        taken.append(float(ex.pop()[0]))
    w = np.exp(-coeff * np.arange(3))
    assert taken[0] == 0
    assert taken[1] == pytest.approx((w[:2] * [0, 10]).sum() / w[:2].sum())
    assert taken[2] == pytest.approx((w * [0, 10, 20]).sum() / w.sum())
    # A chunk of 2 actions stops contributing after 2 steps.
    short = ChunkExecutor(n_action_steps=1, temporal_ensemble=coeff)
    values = []
    for k in range(3):
        short.push(np.full((2, 1), 10.0 * k))
        values.append(float(short.pop()[0]))
    assert values[2] == pytest.approx((w[:2] * [10, 20]).sum() / w[:2].sum())


def test_query_frequency_asks_for_a_chunk_every_n_steps():
    ex = ChunkExecutor(n_action_steps=4, temporal_ensemble=0.01)
    asked = []
    for t in range(12):
        if ex.needs_chunk():
            asked.append(t)
            ex.push(np.zeros((8, 2)))
        ex.pop()
    assert asked == [0, 4, 8]


def test_act_starts_at_the_prior_and_at_the_l1_of_a_zero_chunk():
    policy = _policy("act")
    batch = _batch(b=64, to=1)
    inputs = policy.inputs(batch["obs"], None)
    target = policy.normalizer.normalize("action", batch["action"])
    mu, logvar = policy.posterior(inputs, target)
    assert mu.abs().max() == 0 and logvar.abs().max() == 0  # KL term starts at zero
    loss, _ = policy.compute_loss(batch)
    assert 0.2 < loss.item() < 3 * target.abs().mean().item()


def test_act_uses_z_in_training_and_zero_at_inference():
    torch.manual_seed(0)
    policy = _policy("act", kl_weight=0.1, dropout=0.0)
    batch = _batch(b=32, to=1)
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    first = None
    for _ in range(100):
        loss, _ = policy.compute_loss(batch)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.6 * first  # it fits the batch
    assert policy.to_latent.weight.grad.abs().sum() > 0  # the CVAE encoder is trained
    policy.eval()
    a = policy.predict_chunk(batch["obs"])
    b = policy.predict_chunk(batch["obs"])
    assert torch.equal(a, b)  # z = 0: deterministic
    assert a.shape == (32, TINY_ACT["horizon"], 4)


def test_act_without_the_vae_is_a_plain_l1_regressor():
    policy = _policy("act", use_vae=False, dropout=0.0)
    assert not any(n.startswith(("cvae", "to_latent")) for n, _ in policy.named_parameters())
    batch = _batch(b=16, to=1)
    target = policy.normalizer.normalize("action", batch["action"])
    policy.eval()
    loss, _ = policy.compute_loss(batch)
    pred = policy.sample(policy.inputs(batch["obs"], None), None)  # deterministic: no noise needed
    assert loss.item() == pytest.approx((pred - target).abs().mean().item(), rel=1e-5)


def test_act_on_images_reads_feature_map_tokens():
    obs_dims = {**OBS_DIMS, "corner2_image": 3}
    policy = _policy("act", obs_keys=list(obs_dims), obs_dims=obs_dims, image_size=32,
                     vision_widths=[8, 8, 16, 16])
    images = torch.randint(0, 255, (3, 1, 32, 32, 3), dtype=torch.uint8)
    obs = {**{k: v[:3, :1] for k, v in _batch()["obs"].items()}, "corner2_image": images}
    tokens = policy.tokens(policy.inputs(obs, None))
    cells = policy.tokens.cameras["corner2_image"].feature_cells(32)
    assert tokens.shape == (3, len(OBS_DIMS) + cells, TINY_ACT["dim"])
    policy.eval()
    other = {**obs, "corner2_image": 255 - images}
    assert not torch.allclose(policy.predict_chunk(obs), policy.predict_chunk(other))


def test_kl_term_is_computed_in_float32_under_bf16_autocast():
    policy = _policy("act")
    batch = _batch(b=16, to=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inputs = policy.inputs(batch["obs"], None)
        target = policy.normalizer.normalize("action", batch["action"])
        with torch.no_grad():
            policy.to_latent.weight.normal_(0, 0.5)
        mu, logvar = policy.posterior(inputs, target)
    assert mu.dtype == logvar.dtype == torch.float32
    kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp())).sum(-1)
    assert (kl >= 0).all()
