"""The image encoder and an image-conditioned policy, on real rendered MetaWorld frames."""

import numpy as np
import pytest
import torch

from tests.conftest import TINY_VISION, needs_rendering, tiny
from vlascope.policies import load_pretrained
from vlascope.policies.blocks.encoders import ObservationEncoder, ObservationTokens
from vlascope.policies.blocks.vision import ImageAugment, ImageEncoder, SpatialSoftmax

# 32-px test images leave a 1x1 map after the ResNet's 32x downsampling, where spatial softmax
# says nothing: average pooling for them.


def test_spatial_softmax_finds_the_bright_spot():
    pool = SpatialSoftmax(1, 1)
    with torch.no_grad():
        pool.project.weight.fill_(50.0)
        pool.project.bias.zero_()
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 0, 8] = 1.0  # top-right corner
    ex, ey = pool(x)[0].tolist()
    assert ex > 0.9 and ey < -0.9


def test_augment_crops_randomly_when_training_and_centrally_at_eval():
    aug = ImageAugment(crop_ratio=0.75, color_jitter=0.0)
    x = torch.rand(4, 3, 16, 16)
    aug.train()
    a, b = aug(x), aug(x)
    assert a.shape == (4, 3, 12, 12) and not torch.equal(a, b)
    aug.eval()
    assert torch.equal(aug(x), x[:, :, 2:14, 2:14])


def test_resnet18_layout_and_output_shape():
    enc = ImageEncoder(out_dim=32)  # full ResNet-18 widths
    convs = [m for m in enc.trunk.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]
    assert len(convs) == 17  # stem + 8 basic blocks x 2
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in enc.modules())
    assert enc(torch.randint(0, 255, (2, 64, 64, 3), dtype=torch.uint8)).shape == (2, 32)


@pytest.mark.parametrize("mode,per_frame", [("grid", 16), ("keypoints", 1), ("grid+keypoints", 17)])
def test_image_tokens_are_grid_cells_keypoints_or_both(mode, per_frame):
    torch.manual_seed(0)
    tokens = ObservationTokens({"robot_state": 4, "corner2_image": 3}, 2, 16, 64, token_stages=3,
                               vision={"widths": [8, 16, 32], "keypoints": 4}, image_tokens=mode)
    tokens.eval()
    images = torch.zeros(1, 2, 64, 64, 3, dtype=torch.uint8)
    inputs = {"robot_state": torch.zeros(1, 2, 4), "corner2_image": images}
    out = tokens(inputs)
    assert out.shape == (1, 2 * (1 + per_frame), 16)  # state and image tokens for two frames
    moved = images.clone()
    moved[:, :, 40:50, 40:50] = 255
    # Only the image tokens see the image (the state tokens come first).
    changed = (tokens({**inputs, "corner2_image": moved}) - out).abs().amax(-1) > 1e-6
    assert changed.tolist() == [[False, False] + [True] * 2 * per_frame]


@pytest.mark.parametrize("tokens", [False, True])
def test_film_makes_what_the_trunk_reads_depend_on_the_task(tokens):
    torch.manual_seed(0)
    vision = {"widths": [8, 8, 16, 16], "out_dim": 8, "pool": "avg", "film": True}
    enc = ObservationTokens({"corner2_image": 3}, 1, 8, 32, num_tasks=2, vision=vision) if tokens \
        else ObservationEncoder({"corner2_image": 3}, 1, out_dim=8, num_tasks=2, task_embed_dim=4,
                                vision=vision)
    camera = enc.cameras["corner2_image"]
    films = [block.film for block in camera.trunk.stages]
    assert len(films) == 8 and all(f is not None for f in films)
    enc.eval()
    image = torch.randint(0, 255, (1, 1, 32, 32, 3), dtype=torch.uint8)
    inputs = {"corner2_image": image.expand(2, -1, -1, -1, -1), "task_index": torch.tensor([0, 1])}
    fmap = lambda: camera.feature_map(inputs["corner2_image"].flatten(0, 1), enc.task(inputs))  # noqa: E731
    # FiLM starts as the identity: both tasks read the same image alike...
    assert torch.allclose(fmap()[0], fmap()[1])
    # ...and it is in the forward pass: every block's FiLM gets a gradient.
    enc(inputs).square().sum().backward()
    assert all(f.weight.grad.abs().sum() > 0 for f in films)
    for f in films:
        torch.nn.init.normal_(f.weight, std=0.5)
    assert not torch.allclose(fmap()[0], fmap()[1], atol=1e-4)
    plain = ObservationEncoder({"corner2_image": 3}, 1, out_dim=8, num_tasks=2, task_embed_dim=4,
                               vision={**vision, "film": False})
    assert all(block.film is None for block in plain.cameras["corner2_image"].trunk.stages)


def test_film_needs_a_camera_and_a_task_vector():
    from vlascope.policies.chunking import ChunkingPolicyConfig

    config = ChunkingPolicyConfig(obs_keys=["robot_state"], obs_dims={"robot_state": 4},
                                  task_names=["a", "b"], task_film=True)
    with pytest.raises(ValueError, match="task_film needs a camera input"):
        config.validate()
    with pytest.raises(ValueError, match="FiLM image conditioning needs a task vector"):
        ObservationEncoder({"corner2_image": 3}, 1, vision={"film": True})


@needs_rendering
@pytest.mark.parametrize("name,extra", [("flow", {}), ("act", {}), ("vla", {"language": True}),
                                        ("diffusion", {"aux_keys": ["object_state"]})])
def test_image_policy_trains_saves_loads_and_runs_closed_loop(pick_place_images, tmp_path, name, extra):
    from vlascope.evaluate.runner import evaluate
    from vlascope.train import TrainConfig, train

    over = {**tiny(name), **TINY_VISION, "obs_keys": ["robot_state", "goal", "corner2_image"], **extra}
    result = train([pick_place_images], name, tmp_path / "run",
                   TrainConfig(steps=5, batch_size=8, warmup_steps=2, log_every=1), over, progress=False)
    policy = load_pretrained(result.last_checkpoint)
    assert policy.config.image_size == 32 and "corner2_image" not in policy.normalizer.keys
    # An aux target is read from the data in training only: evaluation below steps without it.
    assert (policy.aux_head is not None) == ("object_state" in policy.normalizer.keys) == \
        bool(extra.get("aux_keys"))
    from vlascope.data import read_dataset
    ep = read_dataset(pick_place_images).episodes[0]
    n = policy.config.n_obs_steps
    obs = {k: torch.from_numpy(np.stack([ep.obs[k][0]] * n))[None] for k in policy.config.obs_keys}
    a = policy.predict_chunk(obs, None, torch.Generator().manual_seed(0))
    again = load_pretrained(result.last_checkpoint)
    assert torch.equal(a, again.predict_chunk(obs, None, torch.Generator().manual_seed(0)))
    # The image reaches the condition: another frame, same state, another condition vector.
    other = dict(obs, corner2_image=torch.from_numpy(np.stack([ep.obs["corner2_image"][-1]] * n))[None])
    with torch.no_grad():
        assert not torch.allclose(again.encode(obs), again.encode(other))
    report = evaluate(policy, "pick-place-v3", 1, max_steps=12, progress=False)
    assert report.episodes[0].length == 12
