"""The doctor on LeRobot checkpoints trained by the real `lerobot-train` on a dataset that
`vlascope data convert` wrote, loaded by LeRobot itself (processors included), healthy and with
planted normalisation faults. Runs in the LeRobot tier (`make test-lerobot`: Python 3.12 with
lerobot 0.6.1); the main suite skips it where lerobot is not importable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lerobot", reason="the LeRobot tier runs with `make test-lerobot`")

from vlascope.data import read_dataset  # noqa: E402
from vlascope.data.lerobot import write_lerobot  # noqa: E402
from vlascope.doctor import build_context, run_checks  # noqa: E402
from vlascope.doctor.model_checks import check_normalization  # noqa: E402
from vlascope.envs.collect import collect_demos  # noqa: E402

TINY = {
    "act": ["--policy.dim_model=32", "--policy.dim_feedforward=64", "--policy.n_heads=2",
            "--policy.n_encoder_layers=1", "--policy.chunk_size=8", "--policy.n_action_steps=8",
            "--policy.optimizer_lr=1e-3"],
    "diffusion": ["--policy.down_dims=[32,64]", "--policy.horizon=8", "--policy.n_action_steps=4",
                  "--policy.diffusion_step_embed_dim=32", "--policy.num_inference_steps=5",
                  "--policy.optimizer_lr=1e-3"],
}


@pytest.fixture(scope="session")
def lerobot_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lerobot")
    collect_demos("button-press-topdown-v3", 8, str(root / "bp.hdf5"), seed=0, progress=False)
    return write_lerobot(root / "bp-lerobot", read_dataset(str(root / "bp.hdf5")))


def lerobot_train(dataset: Path, policy: str, out: Path, steps: int = 60) -> Path:
    """Train with the real lerobot-train, offline, on CPU; returns the pretrained_model folder."""
    cmd = [sys.executable, "-m", "lerobot.scripts.lerobot_train", "--dataset.repo_id=local/bp",
           f"--dataset.root={dataset}", f"--policy.type={policy}", "--policy.device=cpu",
           "--policy.push_to_hub=false", "--policy.pretrained_backbone_weights=null",
           *TINY[policy], "--batch_size=16", f"--steps={steps}", f"--save_freq={steps}",
           "--log_freq=20", "--wandb.enable=false", "--num_workers=0", f"--output_dir={out}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / "checkpoints" / f"{steps:06d}" / "pretrained_model"


@pytest.fixture(scope="session", params=["act", "diffusion"])
def checkpoint(request, lerobot_dataset, tmp_path_factory) -> Path:
    return lerobot_train(lerobot_dataset, request.param, tmp_path_factory.mktemp(request.param) / "run")


def errors(findings, check_id):
    return [f for f in findings if f.id == check_id and f.severity == "error"]


def test_healthy_checkpoint_is_loaded_by_lerobot_and_diagnosed(lerobot_dataset, checkpoint, tmp_path):
    ctx = build_context(str(lerobot_dataset), str(tmp_path), checkpoint=str(checkpoint), quick=True)
    assert ctx.policy.origin == "lerobot"
    assert set(ctx.policy.spec.obs_keys) >= {"robot_state", "object_state"}
    findings = run_checks(ctx, progress=False)
    # LeRobot's mean-std divides by std + 1e-8: the goal's constant height (float noise, std ~3e-8)
    # is scaled ~x1e12, a true finding on this data; nothing else about normalisation is wrong.
    wrong = [f for f in errors(findings, "normalization") if f.evidence.get("scale") is None]
    assert not wrong, [f.title for f in wrong]
    ran = {f.id for f in findings if not f.evidence.get("skipped")}
    assert {"normalization", "init-loss", "dead-parameters", "conditioning", "open-loop"} <= ran
    # Neither LeRobot policy reads observation.goal, though the dataset lists it as a state input.
    ignored = [f for f in findings if f.id == "conditioning" and "goal" in f.title]
    assert ignored and ignored[0].evidence["sensitivity_per_input"]["goal"] == 0


def test_dropped_unnormaliser_and_swapped_stats_are_named(lerobot_dataset, checkpoint, tmp_path):
    from lerobot.processor.normalize_processor import NormalizerProcessorStep, UnnormalizerProcessorStep

    ctx = build_context(str(lerobot_dataset), str(tmp_path), checkpoint=str(checkpoint), quick=True)
    policy = ctx.policy
    policy.post.steps = [s for s in policy.post.steps if not isinstance(s, UnnormalizerProcessorStep)]
    found = errors(check_normalization(ctx), "normalization")
    assert any(f.evidence.get("key") == "action" and f.evidence.get("applied") is False for f in found)
    assert any("normalised units" in f.title for f in found)  # seen in the predictions themselves

    ctx = build_context(str(lerobot_dataset), str(tmp_path), checkpoint=str(checkpoint), quick=True)
    normaliser = next(s for s in ctx.policy.pre.steps if isinstance(s, NormalizerProcessorStep))
    stats = normaliser.stats
    stats["observation.state"], stats["action"] = stats["action"], stats["observation.state"]
    normaliser.to()  # the statistics it applies are rebuilt from .stats
    found = errors(check_normalization(ctx), "normalization")
    assert any(f.evidence.get("matches") in ("action", "robot_state") for f in found), [f.title for f in found]


def test_a_lerobot_checkpoint_is_evaluated_closed_loop(checkpoint, tmp_path, request):
    from vlascope.cli import main

    args = ["eval", str(checkpoint), "--task", "button-press-topdown-v3", "--episodes", "2",
            "--max-steps", "16", "--device", "cpu"]
    assert not main([*args, "--json", str(tmp_path / "here.json")])
    # The same episodes with the envs in a worker process, the policy batched over them.
    assert not main([*args, "--workers", "1", "--json", str(tmp_path / "pool.json")])
    here, pool = (json.loads((tmp_path / f"{name}.json").read_text())["episodes"] for name in ("here", "pool"))
    assert [e["seed"] for e in here] == [e["seed"] for e in pool] and len(here) == 2
    assert all(e["length"] == 16 and not e["error"] for e in here + pool)
    if request.node.callspec.params["checkpoint"] == "act":
        # ACT is deterministic: batched or not, the same episodes. Diffusion samples from one seed
        # a call, so its episodes depend on how the envs are batched (ClosedLoop's docstring).
        assert [e["episode_return"] for e in here] == pytest.approx([e["episode_return"] for e in pool],
                                                                     rel=1e-3)
