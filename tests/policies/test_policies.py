import json

import numpy as np
import pytest
import torch

from tests.conftest import tiny
from vlascope.data import Normalizer, compute_stats
from vlascope.errors import VlascopeError
from vlascope.policies import POLICY_NAMES, build_policy, load_pretrained, make_config, save_pretrained

OBS_DIMS = {"robot_state": 4, "object_state": 14, "goal": 3}


def _policy(name, **over):
    cfg = make_config(name, {**tiny(name), "obs_dims": OBS_DIMS, **over})
    rng = np.random.default_rng(0)
    stats = {k: compute_stats(rng.normal(size=(100, d))) for k, d in OBS_DIMS.items()}
    stats["action"] = compute_stats(rng.uniform(-1, 1, size=(100, 4)))
    modes = {k: "meanstd" for k in OBS_DIMS} | {"action": cfg.action_norm}
    return build_policy(name, cfg, Normalizer(stats, modes))


def _batch(b=6, to=2, tp=8, tasks=None):
    g = torch.Generator().manual_seed(1)
    batch = {"obs": {k: torch.randn(b, to, d, generator=g) for k, d in OBS_DIMS.items()},
             "action": torch.rand(b, tp, 4, generator=g) * 2 - 1}
    if tasks:
        batch["task_index"] = torch.arange(b) % tasks
    return batch


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_forward_backward_and_chunk_shape(name):
    policy = _policy(name)
    loss, metrics = policy.compute_loss(_batch())
    loss.backward()
    grads = [p.grad for p in policy.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    chunk = policy.predict_chunk(_batch()["obs"])
    assert chunk.shape == (6, 8, 4) and torch.isfinite(chunk).all()


@pytest.mark.parametrize("name,prediction,expected", [
    ("diffusion", None, 1.0), ("diffusion", "sample", 1 / 3), ("flow", None, 1 + 1 / 3)])
def test_initial_loss_matches_the_objective(name, prediction, expected):
    # Zero-initialised outputs: noise prediction starts at E[eps^2] = 1, clean-chunk prediction
    # at E[x0^2]; the flow velocity target (x1 - noise) at 1 + E[x1^2] (x1 uniform on [-1, 1]
    # has E[x1^2] = 1/3).
    policy = _policy(name, prediction=prediction)
    torch.manual_seed(0)
    losses = [policy.compute_loss(_batch(b=256))[0].item() for _ in range(5)]
    assert np.mean(losses) == pytest.approx(expected, rel=0.1)


def test_unet_and_mlp_denoisers_both_work_for_both_heads():
    for head in ("diffusion", "flow"):
        for denoiser in ("unet", "mlp"):
            policy = _policy(head, denoiser=denoiser)
            assert policy.compute_loss(_batch())[0].isfinite()


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_save_load_round_trip_reproduces_actions(name, tmp_path):
    policy = _policy(name).eval()
    save_pretrained(policy, name, tmp_path)
    again = load_pretrained(tmp_path, weights="model")
    obs = _batch()["obs"]
    a = policy.predict_chunk(obs, generator=torch.Generator().manual_seed(3))
    b = again.predict_chunk(obs, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert again.config == policy.config


def test_task_embedding_conditions_multi_task_policy():
    policy = _policy("mse", task_names=["a", "b"])
    batch = _batch(tasks=2)
    loss, _ = policy.compute_loss(batch)
    loss.backward()
    assert policy.encoder.task.embedding.weight.grad.abs().sum() > 0
    obs = {k: v[:1].expand(2, -1, -1) for k, v in batch["obs"].items()}
    # Perturb the embedding so the two tasks differ: same observation, different chunk.
    with torch.no_grad():
        policy.encoder.task.embedding.weight.normal_()
    chunk = policy.predict_chunk(obs, torch.tensor([0, 1]))
    assert not torch.allclose(chunk[0], chunk[1])


def test_unknown_policy_and_option():
    with pytest.raises(VlascopeError, match="unknown policy 'transformer'"):
        make_config("transformer")
    with pytest.raises(VlascopeError, match="unknown flow policy option"):
        make_config("flow", {"widht": 3})
    with pytest.raises(VlascopeError, match="vision_tokens must be one of grid, keypoints"):
        _policy("act", vision_tokens="cells")
    with pytest.raises(VlascopeError, match="aux_reads must be memory or queries"):
        _policy("act", aux_reads="decoder")


def test_execution_settings_change_how_a_policy_runs_and_nothing_else():
    trained = make_config("act", {**tiny("act"), "obs_dims": OBS_DIMS, "horizon": 8, "n_action_steps": 4})
    run = trained.with_execution(n_action_steps=1, temporal_ensemble=0.01)
    assert (run.n_action_steps, run.temporal_ensemble) == (1, 0.01)
    assert (trained.n_action_steps, trained.temporal_ensemble) == (4, None)  # a copy
    with pytest.raises(ValueError, match="dim cannot change after training"):
        trained.with_execution(dim=64)
    with pytest.raises(ValueError, match=r"n_action_steps \(9\) must be in \[1, horizon \(8\)\]"):
        trained.with_execution(n_action_steps=9)


def test_checkpoint_from_a_newer_format_is_refused(tmp_path):
    policy = _policy("mse")
    save_pretrained(policy, "mse", tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["format_version"] = 99
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(VlascopeError, match="format_version 99 is newer"):
        load_pretrained(tmp_path)
    with pytest.raises(VlascopeError, match="no such checkpoint folder"):
        load_pretrained(tmp_path / "nope")


def test_observation_noise_only_while_training():
    policy = _policy("mse", obs_noise=0.5)
    obs = _batch()["obs"]
    policy.train()
    assert not torch.equal(policy.encode(obs), policy.encode(obs))
    policy.eval()
    assert torch.equal(policy.encode(obs), policy.encode(obs))


def test_observation_noise_goes_only_on_the_keys_named():
    policy = _policy("mse", obs_noise=0.5, obs_noise_keys=["robot_state"])
    obs = {k: v[:, :1] for k, v in _batch()["obs"].items()}
    policy.train()
    noisy = policy.inputs(obs, None)
    assert not torch.allclose(noisy["robot_state"], policy.normalizer.normalize("robot_state", obs["robot_state"]))
    for k in ("goal", "object_state"):
        assert torch.equal(noisy[k], policy.normalizer.normalize(k, obs[k]))
    with pytest.raises(VlascopeError, match="obs_noise key .action. must be a state input"):
        _policy("mse", obs_noise=0.5, obs_noise_keys=["action"])


def test_action_noise_perturbs_training_targets_only():
    noisy, clean = _policy("mse", action_noise=0.5), _policy("mse")
    clean.load_state_dict(noisy.state_dict())
    batch = _batch()
    noisy.train(), clean.train()
    torch.manual_seed(0)
    a = noisy.compute_loss(batch)[0]
    torch.manual_seed(0)
    b = clean.compute_loss(batch)[0]
    assert not torch.isclose(a, b)
    noisy.eval(), clean.eval()
    assert torch.isclose(noisy.compute_loss(batch)[0], clean.compute_loss(batch)[0])


def test_a_prediction_the_head_does_not_make_is_refused():
    from vlascope.errors import VlascopeError

    with pytest.raises(VlascopeError, match="expected epsilon or sample"):
        _policy("diffusion", prediction="velocity")
    with pytest.raises(VlascopeError, match="not one the mse head makes"):
        _policy("mse", prediction="sample")
    assert _policy("flow", prediction="sample").head.prediction == "sample"


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_aux_targets_add_their_read_out_error_and_are_not_needed_at_inference(name):
    over = {"obs_keys": ["robot_state", "goal"], "aux_keys": ["object_state"], "aux_weight": 2.0}
    policy = _policy(name, **over)
    torch.nn.init.zeros_(policy.aux_head.weight)
    torch.nn.init.zeros_(policy.aux_head.bias)
    batch = _batch()
    torch.manual_seed(0)
    with_aux, terms = policy.compute_loss(batch)
    policy.config.aux_weight = 0.0
    torch.manual_seed(0)
    without = policy.compute_loss(batch)[0]
    # A zero read-out predicts 0, so the aux term is the mean square of the normalised target.
    target = policy.normalizer.normalize("object_state", batch["obs"]["object_state"][:, -1])
    assert (with_aux - without).item() == pytest.approx(2.0 * target.pow(2).mean().item(), rel=1e-4)
    # The training log gets each term: they sum to the loss, and the aux one is that difference.
    parts = {k: v.item() for k, v in terms.items() if k != "loss"}
    assert parts["loss_aux"] == pytest.approx((with_aux - without).item(), rel=1e-4)
    assert sum(parts.values()) == pytest.approx(with_aux.item(), rel=1e-5)
    obs = {k: v for k, v in batch["obs"].items() if k != "object_state"}
    assert policy.predict_chunk(obs).shape == (6, 8, 4)


@pytest.mark.parametrize("name,extra", [("flow", {}), ("act", {}), ("act", {"aux_reads": "queries"})])
def test_aux_read_out_learns_the_target_through_the_encoder(name, extra):
    # object_state is made a function of the goal input: only an encoder that passes the goal
    # through can let a linear read-out predict it.
    torch.manual_seed(0)
    policy = _policy(name, obs_keys=["robot_state", "goal"], aux_keys=["object_state"], **extra)
    batch = _batch(b=64)
    batch["obs"]["object_state"] = batch["obs"]["goal"].repeat(1, 1, 5)[..., :14] * 0.5
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)

    def aux_error():
        policy.config.aux_weight = 1.0
        torch.manual_seed(0)
        full = policy.compute_loss(batch)[0]
        policy.config.aux_weight = 0.0
        torch.manual_seed(0)
        return (full - policy.compute_loss(batch)[0]).item()

    before = aux_error()
    policy.config.aux_weight = 1.0
    for _ in range(60):
        opt.zero_grad()
        policy.compute_loss(batch)[0].backward()
        opt.step()
    # From six initialisations: 0.15-0.20 (act reading the memory), 0.09-0.11 (its queries).
    assert aux_error() < 0.3 * before


def test_an_input_is_not_an_aux_target():
    with pytest.raises(VlascopeError, match="aux key 'goal'"):
        _policy("flow", aux_keys=["goal"])
