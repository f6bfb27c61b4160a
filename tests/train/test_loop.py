import csv
import json
import re

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import TINY_POLICY
from vlascope.data import WindowDataset, read_dataset
from vlascope.errors import VlascopeError
from vlascope.optim import warmup_cosine
from vlascope.policies import load_pretrained
from vlascope.train import TrainConfig, train
from vlascope.train.checkpoint import list_checkpoints


def test_run_folder_is_self_describing(trained_run):
    run = trained_run.run_dir
    assert [p.name for p in list_checkpoints(run)] == ["step_0000003", "step_0000005"]
    last = run / "checkpoints" / "last"
    assert {p.name for p in last.iterdir()} == {"config.json", "model.safetensors", "ema.safetensors",
                                               "normalizer.safetensors", "train_state.pt"}
    cfg = json.loads((last / "config.json").read_text())
    assert cfg["policy"] == "flow" and cfg["step"] == 5
    assert cfg["policy_config"]["obs_dims"] == {"robot_state": 4, "object_state": 14, "goal": 3}
    assert cfg["data"]["num_demos"] == 2
    state = torch.load(last / "train_state.pt", weights_only=True)
    assert state["step"] == 5 and "optimizer" in state and "scheduler" in state
    rows = list(csv.DictReader(open(run / "loss.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    # Nothing half-written is left behind.
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]


def test_ema_differs_from_raw_weights_and_loads_by_default(trained_run):
    last = trained_run.run_dir / "checkpoints" / "last"
    raw, ema = load_file(last / "model.safetensors"), load_file(last / "ema.safetensors")
    assert any(not torch.equal(raw[k], ema[k]) for k in raw)
    policy = load_pretrained(last)
    key = next(k for k in ema if k.endswith("weight"))
    assert torch.equal(policy.state_dict()[key], ema[key])


def test_normaliser_stats_come_from_the_dataset(trained_run, reach_dataset):
    policy = load_pretrained(trained_run.last_checkpoint)
    actions = np.concatenate([e.actions for e in read_dataset(reach_dataset).episodes])
    assert torch.allclose(policy.normalizer.stat("action", "min"), torch.as_tensor(actions.min(0)))
    assert torch.allclose(policy.normalizer.stat("action", "max"), torch.as_tensor(actions.max(0)))


def test_warmup_then_cosine_schedule():
    f = warmup_cosine(10, 110)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.5) and f(110) == pytest.approx(0.0)


def test_gradient_norm_is_clipped_not_the_loss(reach_dataset, tmp_path):
    # A clip threshold far below any real gradient norm: the loss is still the true loss and the
    # logged norm is the one before clipping, so an exploding gradient stays visible in loss.csv.
    run = train([reach_dataset], "mse", tmp_path / "r", TrainConfig(steps=3, batch_size=8, log_every=1,
                grad_clip=1e-6, warmup_steps=1, ckpt_every=0), dict(TINY_POLICY), progress=False)
    rows = list(csv.DictReader(open(run.run_dir / "loss.csv")))
    assert all(float(r["grad_norm"]) > 1e-6 for r in rows)  # unclipped norm is reported
    assert float(rows[0]["loss"]) > 0  # the loss itself is untouched


def test_profile_steps_write_where_the_time_went(reach_dataset, tmp_path):
    run = train([reach_dataset], "mse", tmp_path / "r", TrainConfig(steps=5, batch_size=8, log_every=1,
                profile_steps=2, warmup_steps=1, ckpt_every=0), dict(TINY_POLICY), progress=False)
    head, *table = (run.run_dir / "profile.txt").read_text().splitlines()
    wall = float(re.fullmatch(r"2 steps, 1 process\(es\); per step: wall ([0-9.]+) ms", head).group(1))
    assert wall > 0
    # The operators of a training step, the optimiser's included, and the loop's labelled parts.
    assert any("Optimizer.step" in row for row in table) and any("aten::" in row for row in table)
    for part in ("vlascope.sample_batch", "vlascope.clip_grad_norm", "vlascope.ema_update"):
        assert any(part in row for row in table), part


def test_a_non_finite_loss_stops_training_naming_its_step(reach_dataset, tmp_path, monkeypatch):
    # The loss is read back only at log and checkpoint steps, but the error still names the step
    # where it first went non-finite, and nothing after it is saved.
    from vlascope.errors import VlascopeError
    from vlascope.policies.chunking.model import ChunkingPolicy

    real, calls = ChunkingPolicy.compute_loss, {"n": 0}

    def compute_loss(self, batch):
        loss, extra = real(self, batch)
        calls["n"] += 1
        return (loss * float("inf") if calls["n"] == 7 else loss), extra

    monkeypatch.setattr(ChunkingPolicy, "compute_loss", compute_loss)
    with pytest.raises(VlascopeError, match=r"loss is inf at step 6;"):
        train([reach_dataset], "mse", tmp_path / "r", TrainConfig(steps=30, batch_size=8, log_every=10,
              ckpt_every=5, warmup_steps=1), dict(TINY_POLICY), progress=False)
    assert calls["n"] == 10  # found at the step-10 checkpoint, the first one after step 6
    saved = sorted(p.name for p in (tmp_path / "r" / "checkpoints").glob("step_*"))
    assert saved == ["step_0000005"], saved


def test_training_fits_the_demos(reach_dataset, tmp_path):
    """A real learning check: 400 steps on 2 demos must predict the expert's actions closely."""
    torch.manual_seed(0)
    result = train([reach_dataset], "mse", tmp_path / "fit",
                   TrainConfig(steps=400, batch_size=64, lr=3e-3, ckpt_every=0),
                   {**TINY_POLICY, "encoder_hidden": 64, "cond_dim": 64, "mlp_width": 64},
                   progress=False)
    policy = load_pretrained(result.last_checkpoint)
    ds = read_dataset(reach_dataset)
    windows = WindowDataset(ds.episodes, policy.config.obs_keys, policy.config.n_obs_steps,
                            policy.config.horizon).all_windows()
    pred = policy.predict_chunk(windows["obs"])
    err = (pred[:, 0] - windows["action"][:, 0]).abs().mean(0)
    spread = windows["action"][:, 0].std(0)
    moving = spread > 1e-3
    assert (err[moving] / spread[moving]).max() < 0.3, (err, spread)


def test_dataset_without_needed_keys_is_a_clear_error(reach_dataset, tmp_path):
    with pytest.raises(VlascopeError, match=r"observation key\(s\) \['joint_pos'\] not in the dataset"):
        train([reach_dataset], "mse", tmp_path / "x", TrainConfig(steps=1),
              {"obs_keys": ["joint_pos"]}, progress=False)


def test_near_constant_gripper_reading_is_centred_not_scaled(trained_run, reach_dataset):
    # reach-v3 never closes the gripper: its opening varies by ~1e-3 in the demos. Scaling that
    # by 1/std turned a small drift at test time into a -60 sigma input and wrecked the policy.
    policy = load_pretrained(trained_run.last_checkpoint)
    grip = np.concatenate([e.obs["robot_state"][:, 3] for e in read_dataset(reach_dataset).episodes])
    assert grip.std() < policy.config.norm_floor
    assert policy.normalizer.stat("robot_state", "scale")[3].item() == 1.0
    assert policy.normalizer.stat("robot_state", "scale")[:3].min().item() > 5  # hand xyz scaled


def test_batches_from_device_tables_and_pinned_gather_agree(reach_dataset):
    from vlascope.train.loop import BatchSource

    episodes = read_dataset(reach_dataset).episodes
    tables = WindowDataset(episodes, ["robot_state", "goal"], 2, 8).tables()
    windows = WindowDataset(episodes, ["robot_state", "goal"], 2, 8).all_windows()
    resident = BatchSource(tables, 32, torch.device("cpu"), seed=0, on_device="yes")
    gathered = BatchSource(tables, 32, torch.device("cpu"), seed=0, on_device="no")
    gathered.resident = False  # on CPU the staging path is forced, as it runs on a GPU machine
    idx = torch.randint(0, resident.n, (32,))
    a, b = resident.gather(idx), gathered.gather(idx)
    for k in ("robot_state", "goal"):
        assert torch.equal(a["obs"][k], b["obs"][k])
        assert torch.equal(a["obs"][k], windows["obs"][k][idx])
    assert torch.equal(a["action"], windows["action"][idx])
    # Frames are stored once: two history steps do not double the table.
    assert len(tables["frames"]["robot_state"]) == sum(len(e) for e in episodes)


def test_compiled_training_step_trains_and_saves(reach_dataset, tmp_path):
    # The regression policy: the trainer's compile path (the wrapper, plain weight names in the
    # checkpoint) is the same for every head, and its graph is the quickest to build.
    result = train([reach_dataset], "mse", tmp_path, TrainConfig(
        steps=3, batch_size=16, warmup_steps=1, log_every=1, ckpt_every=0, compile=True),
        dict(TINY_POLICY), progress=False)
    assert np.isfinite(result.final_loss)
    policy = load_pretrained(result.last_checkpoint)  # plain weights: no "_orig_mod." prefixes
    assert not any("_orig_mod" in k for k in policy.state_dict())


def _losses(run) -> dict[int, float]:
    return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(open(run / "loss.csv"))}


def test_resume_continues_the_loss_curve_of_an_uninterrupted_run(reach_dataset, tmp_path):
    from vlascope.train.loop import resume

    cfg = dict(steps=10, batch_size=16, warmup_steps=2, log_every=1, ckpt_every=4)
    over = {**TINY_POLICY, "obs_noise": 0.1}  # one more random draw to keep in step
    whole = train([reach_dataset], "flow", tmp_path / "whole", TrainConfig(**cfg), over, progress=False)
    part = train([reach_dataset], "flow", tmp_path / "part", TrainConfig(**cfg), over, progress=False)
    # Lose everything after step 4, as a crash between checkpoints would.
    import shutil
    for step in ("step_0000008", "step_0000010"):
        shutil.rmtree(part.run_dir / "checkpoints" / step)
    resumed = resume(part.run_dir, progress=False)
    a, b = _losses(whole.run_dir), _losses(resumed.run_dir)
    assert sorted(b) == list(range(1, 11))
    assert max(abs(a[s] - b[s]) for s in a) == 0.0
    ema_a = load_file(whole.run_dir / "checkpoints" / "last" / "ema.safetensors")
    ema_b = load_file(resumed.run_dir / "checkpoints" / "last" / "ema.safetensors")
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)
    with pytest.raises(VlascopeError, match="already reached step 10"):
        resume(part.run_dir, progress=False)


def test_the_loss_log_has_a_column_for_each_term_of_the_loss(trained_run, reach_dataset, tmp_path):
    with open(trained_run.run_dir / "loss.csv", newline="") as f:  # one term: no more columns
        assert next(csv.reader(f)) == ["step", "loss", "grad_norm", "lr", "samples_per_s"]
    cfg = TrainConfig(steps=3, batch_size=8, warmup_steps=1, log_every=1, ckpt_every=0)
    aux = train([reach_dataset], "flow", tmp_path / "aux", cfg,
                {**TINY_POLICY, "obs_keys": ["robot_state", "goal"], "aux_keys": ["object_state"]}, progress=False)
    with open(aux.run_dir / "loss.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[5:] == ["loss_action", "loss_aux"] and len(rows) == 3
    for row in rows:
        assert float(row["loss_action"]) + float(row["loss_aux"]) == pytest.approx(float(row["loss"]), abs=2e-6)
        assert float(row["loss_aux"]) > 0


class _Payload:
    def __reduce__(self):
        import os
        return (os.system, ("touch /tmp/vlascope-pwned",))


def test_resume_refuses_a_train_state_that_carries_code(reach_dataset, tmp_path):
    from pathlib import Path

    from vlascope.train.loop import resume

    run = train([reach_dataset], "flow", tmp_path, TrainConfig(steps=4, batch_size=8, ckpt_every=2),
                dict(TINY_POLICY), progress=False).run_dir
    torch.save({"step": 2, "evil": _Payload()}, run / "checkpoints" / "step_0000004" / "train_state.pt")
    Path("/tmp/vlascope-pwned").unlink(missing_ok=True)
    with pytest.raises(VlascopeError, match="train_state.pt: not loaded .*only reads tensors"):
        resume(run, steps=6, progress=False)
    assert not Path("/tmp/vlascope-pwned").exists()


def test_ddp_options_reach_accelerates_handler():
    from vlascope.train.loop import ddp_options

    assert ddp_options(TrainConfig()).to_kwargs() == {}  # torch's defaults
    handler = ddp_options(TrainConfig(ddp_static_graph=True, ddp_gradient_as_bucket_view=True))
    assert handler.to_kwargs() == {"static_graph": True, "gradient_as_bucket_view": True}


def test_an_unknown_compile_mode_is_named_before_training(reach_dataset, tmp_path):
    with pytest.raises(VlascopeError, match="train option 'compile_mode' must be one of default, .*reduce-overhead, .*got 'fast'"):
        train([reach_dataset], "flow", tmp_path, TrainConfig(steps=2, compile=True, compile_mode="fast"),
              dict(TINY_POLICY), progress=False)
    assert not (tmp_path / "loss.csv").exists()


def test_a_bad_option_in_a_config_file_is_named_with_the_file(tmp_path):
    from vlascope.train.loop import check_config_file, load_config_file

    path = tmp_path / "run.yaml"
    path.write_text("train:\n  steps: 10\npolicy:\n  horizonn: 4\n")
    with pytest.raises(VlascopeError, match=rf"^{re.escape(str(path))}: policy: unknown act policy option\(s\): horizonn"):
        check_config_file(str(path), load_config_file(str(path)), "act")
    path.write_text("train:\n  steps: ten\n")
    with pytest.raises(VlascopeError, match=r"run.yaml: train: train option 'steps' must be a number"):
        check_config_file(str(path), load_config_file(str(path)), "flow")
    path.write_text("train: 5\n")
    with pytest.raises(VlascopeError, match=r"run.yaml: 'train' must be a mapping of option: value, got 5"):
        load_config_file(str(path))
    path.write_text("train:\n  steps: 10\npolicy:\n  horizon: 4\n")  # a good file passes
    check_config_file(str(path), load_config_file(str(path)), "act")


def test_a_lerobot_folder_of_several_tasks_trains_as_its_tasks(reach_dataset, button_dataset, tmp_path):
    from tests.conftest import two_task_lerobot_folder
    from vlascope.evaluate.runner import policy_task_index

    pytest.importorskip("pyarrow")
    folder = two_task_lerobot_folder(reach_dataset, button_dataset, tmp_path / "two")
    result = train([str(folder)], "flow", tmp_path / "run",
                   TrainConfig(steps=2, batch_size=8, warmup_steps=1, log_every=1, ckpt_every=0),
                   {**TINY_POLICY, "language": True}, progress=False)
    policy = load_pretrained(result.run_dir / "checkpoints" / "last")
    # Each task named as the folder names it, its text; the demos of each under its own index.
    texts = ["Reach a goal position", "Press a button"]
    assert policy.config.task_names == texts
    cfg = json.loads((result.run_dir / "checkpoints" / "last" / "config.json").read_text())
    assert cfg["data"]["num_demos"] == len(read_dataset(folder).episodes)
    # The folder holds the texts alone: their embeddings, computed here, are the ones collection
    # cached in each task's own file.
    for i, source in enumerate((reach_dataset, button_dataset)):
        np.testing.assert_allclose(policy.instruction_embeddings[i].numpy(),
                                   read_dataset(source).instruction_embedding, atol=1e-5)
    # An env task finds its index through the text it is recorded under.
    assert [policy_task_index(policy, t) for t in ("button-press-v3", "reach-v3")] == [1, 0]
    with pytest.raises(VlascopeError, match="not 'door-open-v3'"):
        policy_task_index(policy, "door-open-v3")


def test_lr_scaling_multiplies_the_rate_by_the_processes_and_refuses_other_rules():
    from vlascope.train.loop import make_train_config, scaled_lr

    assert scaled_lr(make_train_config({"lr": 2e-4}), 4) == 2e-4
    assert scaled_lr(make_train_config({"lr": 2e-4, "lr_scaling": "sqrt"}), 4) == 4e-4
    assert scaled_lr(make_train_config({"lr": 2e-4, "lr_scaling": "linear"}), 4) == 8e-4
    with pytest.raises(VlascopeError, match="'lr_scaling' must be one of none, sqrt, linear, got 'cubic'"):
        make_train_config({"lr_scaling": "cubic"})
