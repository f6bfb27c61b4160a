"""Head isolation must tell a head that can learn a condition -> chunk map from one that cannot."""

import pytest
import torch

from tests.doctor.faults import BlindDenoiser
from vlascope.doctor.head_isolation import fit_synthetic, synthetic_pairs
from vlascope.policies.blocks.denoisers import MLPDenoiser
from vlascope.policies.blocks.heads import DiffusionHead, FlowHead, RegressionHead

COND_DIM, CHUNK = 64, (4, 2)


@pytest.fixture(autouse=True)
def one_thread():
    # These nets are tiny: a second intra-op thread only adds sync cost, and on a busy machine
    # an oversubscribed thread pool makes a 1 s fit take minutes.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def flow_head(prediction="velocity", wrap=lambda net: net) -> FlowHead:
    torch.manual_seed(0)
    return FlowHead(wrap(MLPDenoiser(CHUNK[1], CHUNK[0], COND_DIM, width=32, depth=1)), 10, "uniform",
                    prediction=prediction)


def fit(head, steps=400):
    return fit_synthetic(head, COND_DIM, CHUNK, n_conditions=10, steps=steps, batch_size=10, lr=3e-3,
                         warmup=20)


@pytest.mark.parametrize("prediction", ["velocity", "sample"])
def test_flow_head_learns_the_map(prediction):
    r = fit(flow_head(prediction))
    assert r["final_loss"] < 0.3 * r["first_loss"], r
    assert r["relative_error"] < 0.25, r
    assert r["steps"] == 400 and r["loss_curve"][0] == (0, r["first_loss"]) and r["loss_curve"][-1][0] == 399


def test_regression_head_learns_the_map():
    torch.manual_seed(0)
    r = fit(RegressionHead(COND_DIM, *CHUNK, width=32))
    assert r["final_loss"] < 0.01 * r["first_loss"] and r["relative_error"] < 0.1, r


def test_head_blind_to_the_condition_cannot_fit():
    # It can only learn the mixture of the 10 targets, so its samples miss each condition's own.
    r = fit(flow_head(wrap=BlindDenoiser))
    assert r["relative_error"] > 0.5, r
    assert r["final_loss"] > 0.5, r


def test_synthetic_pairs_are_fixed_by_the_seed():
    a, b = synthetic_pairs(COND_DIM, CHUNK, 10, seed=3), synthetic_pairs(COND_DIM, CHUNK, 10, seed=3)
    assert a[0].shape == (10, COND_DIM) and a[1].shape == (10, *CHUNK)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], synthetic_pairs(COND_DIM, CHUNK, 10, seed=4)[1])


def test_sample_prediction_converts_a_perfect_x1_to_the_exact_velocity():
    # A net that outputs the true x1 must give zero flow loss, and its Euler samples land on x1.
    cond, x1 = synthetic_pairs(COND_DIM, CHUNK, 10)
    head = FlowHead(lambda x, t, c: x1, 10, "uniform", prediction="sample")
    torch.manual_seed(0)
    assert head.loss(cond, x1).max() < 1e-6
    assert torch.allclose(head.sample(cond, torch.randn(10, *CHUNK)), x1, atol=1e-5)


def test_diffusion_sample_prediction_of_a_perfect_x0_samples_it_exactly():
    # Clean-chunk prediction: a net that outputs the true x0 scores zero and DDIM lands on x0
    # (inside the [-1, 1] clip, which synthetic chunks respect).
    cond, x0 = synthetic_pairs(COND_DIM, CHUNK, 10)
    x0 = x0.clamp(-1, 1)
    head = DiffusionHead(lambda x, t, c: x0, 100, 10, prediction="sample")
    torch.manual_seed(0)
    assert head.loss(cond, x0).max() < 1e-10
    assert torch.allclose(head.sample(cond, torch.randn(10, *CHUNK)), x0, atol=1e-5)


# Noise prediction takes about twice the steps here: its loss trains the condition weakly near
# pure noise (see DiffusionHead).
@pytest.mark.parametrize("prediction,steps", [("epsilon", 1500), ("sample", 400)])
def test_diffusion_head_learns_the_map(prediction, steps):
    torch.manual_seed(0)
    net = MLPDenoiser(CHUNK[1], CHUNK[0], COND_DIM, width=32, depth=1)
    r = fit(DiffusionHead(net, 100, 10, prediction=prediction), steps=steps)
    assert r["final_loss"] < 0.5 * r["first_loss"], r
    assert r["relative_error"] < 0.3, r
