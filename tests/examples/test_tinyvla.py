"""The doctor on a policy written outside vlascope (examples/tinyvla), through its adapter:
the planted faults are found by id and their healthy twins pass."""

from __future__ import annotations

import json
from pathlib import Path

from examples.tinyvla.adapter import TinyVLAPolicy
from examples.tinyvla.model import TinyVLAConfig
from examples.tinyvla.train import build, read_demos, save, train
from tests.conftest import needs_rendering
from vlascope.cli import main
from vlascope.data import read_dataset
from vlascope.doctor import DoctorContext, build_context
from vlascope.doctor.data_checks import check_observability
from vlascope.doctor.model_checks import check_dead_parameters, check_open_loop

SMALL = {"width": 32, "horizon": 4}


def trained(dataset: str, steps: int = 50, **switches) -> TinyVLAPolicy:
    demos = read_demos(dataset, "corner2_image")
    model = build(TinyVLAConfig(image_size=demos[0]["image"].shape[1], **SMALL, **switches), demos)
    train(model, demos, steps, batch_size=32)
    return TinyVLAPolicy(model)


def ctx_for(dataset: str, policy: TinyVLAPolicy, out: Path) -> DoctorContext:
    return DoctorContext(dataset=read_dataset(dataset), out_dir=out, policy=policy, quick=True)


@needs_rendering
def test_unhooked_lora_is_dead_and_a_masked_joint_collapses(pick_place_images, tmp_path):
    healthy = trained(pick_place_images)
    assert check_dead_parameters(ctx_for(pick_place_images, healthy, tmp_path))[0].severity == "ok"
    # The two faults are in the wiring, whatever the training: one step builds each checkpoint.
    unhooked = check_dead_parameters(ctx_for(pick_place_images, trained(pick_place_images, 1, lora_unhooked=True),
                                             tmp_path))
    assert unhooked[0].severity == "error"
    dead = set(unhooked[0].evidence["dead_modules"])  # the adapter and the copy it wraps
    assert dead == {"state_lora.base", "state_lora.down", "state_lora.up"}

    masked = [f for f in check_open_loop(ctx_for(pick_place_images, trained(pick_place_images, 1,
                                                                             mask_first_joint=True), tmp_path))
              if f.id == "mode-collapse"]
    assert masked[0].severity == "error" and "[0" in masked[0].title
    assert masked[0].evidence["std_ratio_pred_over_truth"][0] == 0
    twin = [f for f in check_open_loop(ctx_for(pick_place_images, healthy, tmp_path)) if f.id == "mode-collapse"]
    assert twin[0].evidence["std_ratio_pred_over_truth"][0] > 0.1


@needs_rendering
def test_a_goal_left_out_is_named_by_observability(pick_place_images, pick_place_12, tmp_path):
    # The adapter's inputs decide what the check asks about; the state-only demos answer it.
    [hidden] = check_observability(ctx_for(pick_place_12, trained(pick_place_images, 1, use_goal=False), tmp_path))
    assert hidden.severity in ("error", "warning") and hidden.evidence["missing_input"] == "goal", hidden.title
    [given] = check_observability(ctx_for(pick_place_12, trained(pick_place_images, 1), tmp_path))
    assert given.severity == "ok", given.title


@needs_rendering
def test_the_adapter_through_the_command_line(pick_place_images, tmp_path, capsys):
    policy = trained(pick_place_images, steps=1)
    save(policy.model, str(tmp_path / "tinyvla.pt"))
    ctx = build_context(pick_place_images, str(tmp_path / "report"), checkpoint=str(tmp_path / "tinyvla.pt"),
                        adapter="examples.tinyvla.adapter:load")
    assert ctx.policy.origin.startswith("adapter") and ctx.policy.spec.obs_keys[0] == "corner2_image"
    capsys.readouterr()
    assert main(["doctor", "--dataset", pick_place_images, "--out", str(tmp_path / "r"),
                 "--adapter", "examples.tinyvla.adapter:load"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs --checkpoint" in err[0]
    assert main(["doctor", "--dataset", pick_place_images, "--out", str(tmp_path / "r"),
                 "--adapter", "examples.tinyvla.nowhere:load"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "examples.tinyvla.nowhere" in err[0]


@needs_rendering
def test_the_adapter_is_evaluated_closed_loop(pick_place_images, tmp_path, capsys):
    policy = trained(pick_place_images, steps=1)
    save(policy.model, str(tmp_path / "tinyvla.pt"))
    args = ["eval", str(tmp_path / "tinyvla.pt"), "--task", "pick-place-v3", "--episodes", "2",
            "--max-steps", "12", "--adapter", "examples.tinyvla.adapter:load"]
    assert not main([*args, "--json", str(tmp_path / "eval.json")])
    report = json.loads((tmp_path / "eval.json").read_text())
    seeds = [e["seed"] for e in report["episodes"]]
    assert len(set(seeds)) == 2
    assert all(e["length"] == 12 and not e["error"] for e in report["episodes"])  # ran to the limit
    # Executed 2 actions a chunk instead of the adapter's 4: the same episodes, replanned.
    assert not main([*args, "--action-steps", "2", "--json", str(tmp_path / "replanned.json")])
    replanned = json.loads((tmp_path / "replanned.json").read_text())["episodes"]
    assert [e["seed"] for e in replanned] == seeds
    assert [e["episode_return"] for e in replanned] != [e["episode_return"] for e in report["episodes"]]
    assert not main([*args, "--action-steps", "4", "--json", str(tmp_path / "as_trained.json")])
    as_trained = json.loads((tmp_path / "as_trained.json").read_text())["episodes"]
    assert [e["episode_return"] for e in as_trained] == [e["episode_return"] for e in report["episodes"]]
    capsys.readouterr()
    assert main([*args, "--action-steps", "9"]) == 2  # past the chunk of 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "n_action_steps (9) must be in [1, horizon (4)]" in err[0], err
