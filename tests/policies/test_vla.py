"""The VLA on a real (tiny, randomly initialised) Qwen2-VL loaded from a local folder."""

import numpy as np
import pytest
import torch

from tests.conftest import TINY_VISION, TINY_VLA
from vlascope.policies.vla.random_backbone import build_random_qwen2_vl
from vlascope.data import Normalizer, compute_stats
from vlascope.policies import build_policy, load_pretrained, make_config, save_pretrained
from vlascope.policies.vla.backbones import patchify

OBS_DIMS = {"robot_state": 4, "goal": 3, "corner2_image": 3}
INSTRUCTIONS = ["pick the puck and place it at the goal", "press the button top down"]


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    return build_random_qwen2_vl(tmp_path_factory.mktemp("vlm"))


def vla(backbone="small", **over):
    cfg = make_config("vla", {**TINY_VLA, **TINY_VISION, "obs_keys": list(OBS_DIMS),
                              "obs_dims": OBS_DIMS, "image_size": 32, "backbone": str(backbone),
                              "instructions": INSTRUCTIONS, "task_names": ["pick", "press"], **over})
    rng = np.random.default_rng(0)
    stats = {k: compute_stats(rng.normal(size=(100, d))) for k, d in OBS_DIMS.items() if k != "corner2_image"}
    stats["action"] = compute_stats(rng.uniform(-1, 1, size=(100, 4)))
    modes = {"robot_state": "meanstd", "goal": "meanstd", "action": "minmax"}
    torch.manual_seed(0)
    return build_policy("vla", cfg, Normalizer(stats, modes))


def batch(b=4):
    g = torch.Generator().manual_seed(1)
    return {"obs": {"robot_state": torch.randn(b, 2, 4, generator=g),
                    "goal": torch.randn(b, 2, 3, generator=g),
                    "corner2_image": torch.randint(0, 256, (b, 2, 32, 32, 3), generator=g,
                                                   dtype=torch.uint8)},
            "action": torch.rand(b, TINY_VLA["horizon"], 4, generator=g) * 2 - 1,
            "task_index": torch.arange(b) % 2}


def test_patchify_matches_the_hugging_face_image_processor(tiny_vlm):
    from transformers import AutoImageProcessor

    processor = AutoImageProcessor.from_pretrained(tiny_vlm)
    images = np.random.default_rng(0).integers(0, 256, (2, 56, 56, 3), dtype=np.uint8)
    ref = processor(images=list(images), return_tensors="pt")
    ours, grid = patchify(torch.from_numpy(images), 56, processor.image_mean, processor.image_std,
                          processor.patch_size, processor.merge_size, processor.temporal_patch_size)
    assert torch.equal(grid, ref["image_grid_thw"])
    torch.testing.assert_close(ours, ref["pixel_values"].float(), atol=1e-4, rtol=1e-4)


def test_lora_trains_adapters_not_the_backbone(tiny_vlm):
    policy = vla(tiny_vlm, backbone_mode="lora")
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    backbone = {n for n in trainable if n.startswith("backbone.")}
    assert backbone and all("lora_" in n for n in backbone)
    with torch.no_grad():  # the head's zero-initialised output layer blocks every gradient
        policy.head.net.out[-1].weight.normal_(0, 0.1)
    loss, _ = policy.compute_loss(batch())
    loss.backward()
    lora_grads = [p.grad for n, p in policy.named_parameters() if "lora_B" in n]
    assert lora_grads and all(g is not None and g.abs().sum() > 0 for g in lora_grads)
    frozen = vla(tiny_vlm, backbone_mode="frozen")
    assert not any(p.requires_grad for p in frozen.backbone.parameters())


def test_hf_vla_round_trip_and_instruction_conditioning(tiny_vlm, tmp_path):
    policy = vla(tiny_vlm, backbone_mode="lora")
    with torch.no_grad():  # move the adapters off their zero init so they matter
        for n, p in policy.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    policy.eval()
    save_pretrained(policy, "vla", tmp_path)
    again = load_pretrained(tmp_path, weights="model")
    obs = batch()["obs"]
    tasks = torch.tensor([0, 1, 0, 1])
    a = policy.predict_chunk(obs, tasks, torch.Generator().manual_seed(0))
    b = again.predict_chunk(obs, tasks, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    same_obs = {k: v[:1].expand(2, *v.shape[1:]) for k, v in obs.items()}
    cond = policy.encode(same_obs, torch.tensor([0, 1]))
    assert not torch.allclose(cond[0], cond[1])  # the instruction reaches the condition


def test_small_backbone_reads_the_cached_instruction_embedding():
    policy = vla(language=True, language_dim=8)
    policy.set_instruction_embeddings(torch.randn(2, 8))
    policy.eval()
    obs = {k: v[:1].expand(2, *v.shape[1:]) for k, v in batch()["obs"].items()}
    cond = policy.encode(obs, torch.tensor([0, 1]))
    assert not torch.allclose(cond[0], cond[1])
    given = policy.encode({**obs, "language": policy.instruction_embeddings[[1, 1]]}, torch.tensor([0, 1]))
    torch.testing.assert_close(given[0], cond[1])  # an embedding passed in overrides the task's


def test_a_folder_that_is_not_a_model_is_a_clear_error(tmp_path):
    from vlascope.errors import VlascopeError

    with pytest.raises(VlascopeError, match="not a Hugging Face model folder"):
        vla(tmp_path)


def test_checkpoint_leaves_the_frozen_backbone_at_its_source(tiny_vlm, tmp_path):
    from safetensors.torch import load_file

    policy = vla(tiny_vlm, backbone_mode="lora")
    save_pretrained(policy, "vla", tmp_path)
    saved = load_file(tmp_path / "model.safetensors")
    lora = [k for k in saved if "lora_" in k]
    base = [k for k in saved if k.startswith("backbone.model.") and "lora_" not in k]
    assert lora and not base  # adapters saved, the pretrained weights reloaded from the folder
    again = load_pretrained(tmp_path, weights="model")
    for k, v in policy.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
