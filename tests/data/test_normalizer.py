import numpy as np
import torch

from vlascope.data import Normalizer, compute_stats


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal([1.0, -2.0, 5.0], [0.5, 3.0, 1.0], size=(1000, 3))
    x[:, 2] = 0.3 + 1e-9 * rng.normal(size=1000)  # a near-constant dimension
    return x


def test_meanstd_and_minmax_and_inverse():
    x = _data()
    norm = Normalizer({"a": compute_stats(x), "b": compute_stats(x)}, {"a": "meanstd", "b": "minmax"})
    t = torch.as_tensor(x, dtype=torch.float32)
    za = norm.normalize("a", t)
    assert torch.allclose(za[:, :2].mean(0), torch.zeros(2), atol=1e-4)
    assert torch.allclose(za[:, :2].std(0), torch.ones(2), atol=1e-2)
    zb = norm.normalize("b", t)
    assert torch.allclose(zb[:, :2].min(0).values, -torch.ones(2), atol=1e-5)
    assert torch.allclose(zb[:, :2].max(0).values, torch.ones(2), atol=1e-5)
    assert torch.allclose(norm.unnormalize("a", za), t, atol=1e-4)
    assert torch.allclose(norm.unnormalize("b", zb), t, atol=1e-4)


def test_tiny_std_is_centred_not_blown_up():
    x = _data()
    for mode in ("meanstd", "minmax"):
        norm = Normalizer({"a": compute_stats(x)}, {"a": mode}, floor=1e-3)
        z = norm.normalize("a", torch.as_tensor(x, dtype=torch.float32))
        assert z[:, 2].abs().max() < 1e-3, mode
        # A test-time value off the training constant stays at the scale it came in.
        off = torch.tensor([[1.0, -2.0, 0.35]])
        assert abs(norm.normalize("a", off)[0, 2].item() - 0.05) < 1e-5


def test_state_dict_round_trip():
    x = _data()
    norm = Normalizer({"a": compute_stats(x)}, {"a": "minmax"})
    again = Normalizer.from_state_dict(norm.state_dict(), norm.modes, norm.floor)
    t = torch.as_tensor(x[:10], dtype=torch.float32)
    assert torch.equal(norm.normalize("a", t), again.normalize("a", t))
    assert torch.allclose(again.stat("a", "std"), torch.as_tensor(x.std(0), dtype=torch.float32))
