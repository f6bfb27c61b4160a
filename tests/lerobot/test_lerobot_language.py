"""A LeRobot policy that reads its task as text (SmolVLA), trained by the real `lerobot-train` on a
two-task folder written by vlascope's LeRobot exporter, then evaluated and diagnosed. Its
backbone is a SmolVLM built from a config offline (benchmarks/_tiny_smolvlm.py). Runs in the
LeRobot tier (`make test-lerobot`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lerobot", reason="the LeRobot tier runs with `make test-lerobot`")

import torch  # noqa: E402

from benchmarks._tiny_smolvlm import build_tiny_smolvlm, same_image_tokens, smolvla_options  # noqa: E402
from tests.conftest import two_task_lerobot_folder  # noqa: E402
from vlascope.data import read_dataset  # noqa: E402
from vlascope.data.lerobot import task_texts, write_lerobot  # noqa: E402
from vlascope.doctor import build_context, run_checks  # noqa: E402
from vlascope.envs import instruction_for  # noqa: E402
from vlascope.envs.collect import collect_demos  # noqa: E402
from vlascope.errors import VlascopeError  # noqa: E402
from vlascope.policies.lerobot_checkpoint import LeRobotPolicy  # noqa: E402

TASKS = ("reach-v3", "push-v3")
IMAGE = 32  # the frames' side in the dataset; SmolVLA pads and resizes them to its tower's side


@pytest.fixture(scope="module")
def two_tasks(tmp_path_factory) -> Path:
    """reach and push, three demos each with the corner2 camera, in one LeRobot folder whose
    episodes are each recorded under their task's instruction."""
    root = tmp_path_factory.mktemp("two-tasks")
    for task in TASKS:
        collect_demos(task, 3, str(root / f"{task}.hdf5"), seed=0, camera="corner2", image_size=IMAGE,
                      progress=False)
    return two_task_lerobot_folder(*(root / f"{task}.hdf5" for task in TASKS), root / "two-lerobot")


@pytest.fixture(scope="module")
def smolvla(two_tasks, tmp_path_factory) -> Path:
    return train_smolvla(two_tasks, tmp_path_factory.mktemp("smolvla"))


def train_smolvla(dataset: Path, root: Path) -> Path:
    """A SmolVLA trained 20 steps by lerobot-train, offline, on CPU: its pretrained_model folder."""
    backbone = build_tiny_smolvlm(root / "smolvlm", [instruction_for(t) for t in TASKS])
    cmd = [sys.executable, "-m", "lerobot.scripts.lerobot_train", f"--dataset.repo_id=local/{dataset.name}",
           f"--dataset.root={dataset}", "--policy.type=smolvla", "--policy.device=cpu",
           "--policy.push_to_hub=false", *smolvla_options(backbone), "--batch_size=8", "--steps=20",
           "--save_freq=20", "--log_freq=10", "--wandb.enable=false", "--num_workers=0",
           f"--output_dir={root / 'run'}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "run" / "checkpoints" / "000020" / "pretrained_model"


def observation(policy: LeRobotPolicy) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {key: (torch.randint(0, 256, (2, 1, *shape), generator=generator, dtype=torch.uint8)
                  if len(shape) == 3 else torch.randn((2, 1, *shape), generator=generator))
            for key, shape in policy.spec.obs_shapes.items()}


def test_each_task_index_reaches_smolvla_as_its_instruction(two_tasks, smolvla):
    policy = LeRobotPolicy(smolvla)
    texts = [instruction_for(t) for t in TASKS]
    assert task_texts(two_tasks) == texts
    assert policy.training_info()["task_names"] == texts
    obs = observation(policy)
    reach = policy.predict_chunk(obs, seed=3, task_index=torch.tensor([0, 0]))
    push = policy.predict_chunk(obs, seed=3, task_index=torch.tensor([1, 1]))
    assert not torch.allclose(reach, push)  # the text moves the chunk
    # Index 0 is reach's text: LeRobot's own pipeline, given that text, predicts the same chunk.
    assert torch.allclose(reach, chunk_for_text(policy, obs, texts[0], 3))


def chunk_for_text(policy: LeRobotPolicy, obs: dict, text: str, seed: int) -> torch.Tensor:
    """What LeRobot's own pipeline predicts for `obs` told `text`, from `seed`."""
    batch = {policy.features[key]: (x[:, -1].permute(0, 3, 1, 2).float() / 255 if x.dtype == torch.uint8
                                    else x[:, -1]) for key, x in obs.items()}
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        policy.policy.reset()
        chunk = policy.policy.predict_action_chunk(policy.pre({**batch, "task": [text] * len(next(iter(batch.values())))}))
    return policy.post(chunk).float()


def test_a_smolvla_of_one_task_is_told_its_own_text(tmp_path):
    collect_demos("reach-v3", 3, str(tmp_path / "reach.hdf5"), seed=0, camera="corner2", image_size=IMAGE,
                  progress=False)
    data = read_dataset(str(tmp_path / "reach.hdf5"))
    data.attrs["instruction"] = "touch the red ball"  # the user's own wording, not MetaWorld's
    policy = LeRobotPolicy(train_smolvla(write_lerobot(tmp_path / "reach-lerobot", data), tmp_path))
    # One task: none named, so the evaluator and the doctor ask for index 0 on any task.
    assert "task_names" not in policy.training_info()
    obs = observation(policy)
    assert torch.allclose(policy.predict_chunk(obs, seed=1), chunk_for_text(policy, obs, "touch the red ball", 1))


def test_doctor_and_evaluator_find_each_task_by_its_instruction(two_tasks, smolvla, tmp_path, capsys):
    from vlascope.cli import main

    ctx = build_context(str(two_tasks), str(tmp_path / "report"), checkpoint=str(smolvla), quick=True,
                        task="push-v3")
    findings = run_checks(ctx, progress=False)
    task = next(f for f in findings if f.id == "conditioning").evidence["task"]
    # The doctor asked for push (its dataset's task) and for reach instead, on push's frames.
    assert task["asked"] == instruction_for("push-v3") and task["tasks_trained"] == 2
    assert task["asked_for_another_task"] > 0

    args = ["eval", str(smolvla), "--task", "reach-v3", "--episodes", "1", "--max-steps", "16",
            "--device", "cpu", "--json", str(tmp_path / "eval.json")]
    assert not main(args)
    assert not json.loads((tmp_path / "eval.json").read_text())["episodes"][0]["error"]
    capsys.readouterr()
    assert main(["eval", str(smolvla), "--task", "door-open-v3", "--episodes", "1", "--device", "cpu"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "trained on tasks" in error[0] and "not 'door-open-v3'" in error[0]


def test_without_its_training_dataset_the_policy_names_what_is_missing(smolvla, tmp_path):
    moved = shutil.copytree(smolvla, tmp_path / "pretrained_model")
    config = json.loads((moved / "train_config.json").read_text())
    config["dataset"] |= {"root": str(tmp_path / "gone"), "repo_id": "local/not-cached"}
    (moved / "train_config.json").write_text(json.dumps(config))
    with pytest.raises(VlascopeError, match=r"train_config.json: this LeRobot smolvla reads its task as text"):
        LeRobotPolicy(moved)


def test_a_frozen_smolvla_backbone_that_sees_every_frame_alike_is_named(two_tasks, smolvla, tmp_path):
    from vlascope.doctor.model_checks import check_conditioning

    ctx = build_context(str(two_tasks), str(tmp_path), checkpoint=str(smolvla), quick=True, task="push-v3")
    # SmolVLA trains its action expert alone by default: the VLM is frozen, and its features of
    # push's frames and instruction still differ from sample to sample.
    healthy = check_conditioning(ctx)
    backbone = next(f for f in healthy if f.evidence.get("backbone")).evidence["backbone"]
    assert backbone["frozen"] is True and backbone["mean_pairwise_cosine_of_pooled_tokens"] < 0.99
    assert not any("frozen backbone" in f.title for f in healthy)

    # The vision tower's last LayerNorm zeroed: every frame gives the VLM the same image tokens.
    same_image_tokens(ctx.policy.policy)
    planted = check_conditioning(ctx)
    named = [f for f in planted if "frozen backbone gives nearly the same features" in f.title]
    assert named and named[0].evidence["backbone"]["mean_pairwise_cosine_of_pooled_tokens"] > 0.999
    assert any(f.severity == "error" and "corner2_image" in f.title for f in planted)
