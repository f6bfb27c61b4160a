"""The command line: exit codes, output and one-line errors. One workflow starts the real
`python -m vlascope` entry point; every other case runs the same main() in this process, which
is what the entry point calls (a fresh interpreter costs seconds a case)."""

import contextlib
import io
import json
import subprocess
import sys

import h5py
import numpy as np
import pytest


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "vlascope", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def run_here(*args):
    from vlascope.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's own errors exit
            code = exc.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if "error" in line]
    assert len(lines) == 1, proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_unknown_task(tmp_path):
    assert_one_line_error(run_here("collect", "--task", "pick-plce-v3", "--episodes", "1",
                              "--out", str(tmp_path / "x.hdf5")), "unknown MetaWorld task", "pick-place-v3")


def test_missing_dataset_and_wrong_policy(tmp_path, reach_dataset):
    assert_one_line_error(run_here("train", "--dataset", str(tmp_path / "nope.hdf5"), "--policy", "flow",
                              "--out", str(tmp_path / "r")), "nope.hdf5", "no such dataset file")
    assert_one_line_error(run_here("train", "--dataset", reach_dataset, "--policy", "transformer",
                              "--out", str(tmp_path / "r")), "unknown policy 'transformer'")


def test_dataset_without_actions(tmp_path):
    path = tmp_path / "noact.hdf5"
    with h5py.File(path, "w") as f:
        f["data/demo_0/obs/robot_state"] = np.zeros((3, 4))
    assert_one_line_error(run_here("train", "--dataset", str(path), "--policy", "mse", "--out",
                              str(tmp_path / "r")), "data/demo_0", "missing 'actions'")


def test_missing_checkpoint(tmp_path):
    assert_one_line_error(run_here("eval", str(tmp_path / "none"), "--task", "reach-v3"),
                          "no such checkpoint folder")


def test_bad_config_file(tmp_path, reach_dataset):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  stpes: 3\n")
    assert_one_line_error(run_here("train", "--dataset", reach_dataset, "--policy", "mse", "--out",
                              str(tmp_path / "r"), "--config", str(cfg)),
                          f"{cfg}: train: unknown train option(s): stpes")


def test_collect_train_eval_from_the_command_line(tmp_path):
    data = tmp_path / "d.hdf5"
    p = run("collect", "--task", "reach-v3", "--episodes", "2", "--out", str(data))
    assert p.returncode == 0, p.stderr
    assert "wrote 2 demos" in p.stdout and "dropped 0" in p.stdout
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  batch_size: 8\n  log_every: 1\npolicy:\n  mlp_width: 32\n  cond_dim: 32\n")
    p = run_here("train", "--dataset", str(data), "--policy", "flow", "--out", str(tmp_path / "run"),
            "--steps", "3", "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    p = run_here("eval", str(tmp_path / "run" / "checkpoints" / "last"), "--task", "reach-v3",
            "--episodes", "1", "--max-steps", "16", "--json", str(tmp_path / "m.json"),
            "--per-episode")
    assert p.returncode == 0, p.stderr
    assert "success" in p.stdout and "95% CI" in p.stdout
    assert (tmp_path / "m.json").exists()
    ckpt = str(tmp_path / "run" / "checkpoints" / "last")
    p = run_here("eval", ckpt, "--task", "reach-v3", "--episodes", "3", "--max-steps", "16",
            "--workers", "1", "--envs-per-worker", "2", "--json", str(tmp_path / "w.json"))
    assert p.returncode == 0, p.stderr
    episodes = json.loads((tmp_path / "w.json").read_text())["episodes"]
    assert len(episodes) == 3 and all(e["length"] == 16 or e["success"] for e in episodes), episodes
    assert_one_line_error(run_here("eval", ckpt, "--task", "reach-v3", "--workers", "1",
                              "--envs-per-worker", "0"), "--envs-per-worker must be at least 1")


def test_eval_runs_several_checkpoints_on_the_same_episodes_and_pools_them(trained_run, tmp_path):
    ckpts = [str(trained_run.run_dir / "checkpoints" / "step_0000003"), str(trained_run.last_checkpoint)]
    p = run_here("eval", *ckpts, "--task", "reach-v3", "--episodes", "2", "--max-steps", "16",
            "--device", "cpu", "--json", str(tmp_path / "p.json"))
    assert p.returncode == 0, p.stderr
    assert "pooled over 2 checkpoints" in p.stdout and all(c in p.stdout for c in ckpts)
    both = json.loads((tmp_path / "p.json").read_text())
    assert [r["checkpoint"] for r in both["runs"]] == ckpts
    assert [e["seed"] for e in both["runs"][0]["episodes"]] == [e["seed"] for e in both["runs"][1]["episodes"]]
    assert both["pooled"]["episodes"] == 4 and both["pooled"]["runs"] == 2
    assert both["pooled"]["successes"] == sum(r["summary"]["successes"] for r in both["runs"])
    assert_one_line_error(run_here("eval", *ckpts, "--task", "reach-v3", "--video", str(tmp_path / "v.mp4")),
                          "--video records one checkpoint")
    assert_one_line_error(run_here("eval", *ckpts, str(tmp_path / "seed9"), "--task", "reach-v3"),
                          "seed9", "no such checkpoint folder")


def test_eval_runs_several_tasks_in_one_pool_and_reports_their_splits(trained_run, tmp_path):
    ckpt = str(trained_run.last_checkpoint)
    common = ["--episodes", "2", "--max-steps", "12", "--workers", "1", "--device", "cpu"]
    p = run_here("eval", "--task", "reach-v3,push-v3", ckpt, *common, "--json", str(tmp_path / "both.json"))
    assert p.returncode == 0, p.stderr
    assert "very_hard" not in p.stdout and "easy" in p.stdout and "average" in p.stdout
    both = json.loads((tmp_path / "both.json").read_text())
    assert set(both["tasks"]) == {"reach-v3", "push-v3"}
    assert both["splits"]["easy"]["tasks"] == 1 and both["splits"]["hard"]["tasks"] == 1  # reach, push
    assert both["splits"]["average"]["episodes"] == 4
    assert both["splits"]["average"]["successes"] == sum(t["summary"]["successes"] for t in both["tasks"].values())
    # Each task's episodes are those it gets alone.
    p = run_here("eval", ckpt, "--task", "push-v3", *common, "--json", str(tmp_path / "push.json"))
    assert p.returncode == 0, p.stderr
    alone = json.loads((tmp_path / "push.json").read_text())["episodes"]
    together = both["tasks"]["push-v3"]["episodes"]
    assert [(e["seed"], e["length"]) for e in alone] == [(e["seed"], e["length"]) for e in together]
    assert [e["episode_return"] for e in alone] == pytest.approx([e["episode_return"] for e in together], rel=1e-4)
    assert_one_line_error(run_here("eval", ckpt, "--task", "reach-v3,mt11"), "unknown MetaWorld task 'mt11'")


@pytest.mark.parametrize("policy", ["flow"])
def test_quickstart_runs_the_whole_loop(tmp_path, policy):
    p = run_here("quickstart", "--out", str(tmp_path / "qs"), "--demos", "2", "--steps", "10",
            "--episodes", "1", "--policy", policy, "--doctor", "quick")
    assert p.returncode == 0, p.stderr
    assert "whole loop" in p.stdout and "reach-v3 / flow" in p.stdout
    assert (tmp_path / "qs" / "summary.json").exists()
    # The last step diagnoses what it trained: a 10-step policy has not learned its demos.
    assert "[4/4] the doctor" in p.stdout and (tmp_path / "qs" / "doctor" / "report.html").exists()
    assert "open-loop" in p.stdout


def test_sweep_then_doctor_reads_it(trained_run, reach_dataset, tmp_path):
    run_dir = str(trained_run.run_dir)
    proc = run_here("sweep", run_dir, "--task", "reach-v3", "--episodes", "1", "--max-steps", "8",
               "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "sweep.json" in proc.stdout and (trained_run.run_dir / "sweep.csv").exists()
    proc = run_here("doctor", "--dataset", reach_dataset, "--checkpoint", str(trained_run.last_checkpoint),
               "--quick", "--out", str(tmp_path / "report"), "--fail-on", "warning")
    findings = json.loads((tmp_path / "report" / "findings.json").read_text())
    # --fail-on: status 1 exactly when a finding at that level exists, the report written either way.
    failing = sorted({f["id"] for f in findings if f["severity"] in ("error", "warning")})
    assert proc.returncode == (1 if failing else 0), proc.stderr
    if failing:
        assert proc.stderr.strip().endswith(", ".join(failing)), proc.stderr
    sweep = next(f for f in findings if f["id"] == "sweep-tracking")
    assert "skipped" not in sweep["evidence"]  # it read the run's sweep.json
    assert sweep["evidence"]["checkpoints"] == 2


def test_sweep_without_checkpoints_is_one_line(tmp_path):
    assert_one_line_error(run_here("sweep", str(tmp_path), "--task", "reach-v3"), "no checkpoints")


def test_act_with_an_aux_target_and_temporal_ensembling_from_the_command_line(tmp_path, reach_dataset):
    cfg = tmp_path / "act.yaml"
    cfg.write_text("train:\n  batch_size: 8\npolicy:\n  dim: 32\n  heads: 4\n  ff_dim: 64\n"
                   "  encoder_layers: 1\n  cvae_layers: 1\n  horizon: 8\n  n_action_steps: 4\n")
    common = ("train", "--dataset", reach_dataset, "--policy", "act", "--out", str(tmp_path / "run"),
              "--steps", "3", "--config", str(cfg), "--obs-keys", "robot_state", "goal", "--aux-keys")
    assert_one_line_error(run_here(*common, "goal"), "aux key 'goal' must be a recorded state key")
    assert_one_line_error(run_here(*common, "joint_pos"), "['joint_pos'] not in the dataset")
    p = run_here(*common, "object_state")
    assert p.returncode == 0, p.stderr
    ckpt = str(tmp_path / "run" / "checkpoints" / "last")
    saved = json.loads((tmp_path / "run" / "checkpoints" / "last" / "config.json").read_text())
    assert saved["policy_config"]["aux_keys"] == ["object_state"]
    p = run_here("eval", ckpt, "--task", "reach-v3", "--episodes", "1", "--max-steps", "12",
            "--action-steps", "1", "--temporal-ensemble", "0.01", "--json", str(tmp_path / "m.json"))
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "m.json").read_text())["episodes"][0]["length"] == 12
    p = run_here("eval", ckpt, "--task", "reach-v3", "--episodes", "1", "--action-steps", "99")
    assert p.returncode != 0 and "n_action_steps (99) must be in [1, horizon (8)]" in p.stderr
    assert "Traceback" not in p.stderr


def test_commands_that_build_no_policy_start_without_torch():
    # Listing tasks, collecting demos or inspecting a dataset never loads a model: the parser
    # names the policies without importing torch and the policy families.
    code = ("import sys; from vlascope.cli import build_parser; "
            "args = build_parser().parse_args(['tasks']); print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


def test_doctor_examines_one_task_of_a_lerobot_folder_of_several(reach_dataset, button_dataset, tmp_path):
    from tests.conftest import two_task_lerobot_folder

    pytest.importorskip("pyarrow")
    folder = str(two_task_lerobot_folder(reach_dataset, button_dataset, tmp_path / "two"))
    proc = run_here("doctor", "--dataset", folder, "--task", "button-press-v3", "--quick",
                    "--out", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr
    assert f"doctor: 1 demos from {folder}" in proc.stdout and "task button-press-v3" in proc.stdout
    assert_one_line_error(run_here("doctor", "--dataset", folder, "--task", "door-open-v3", "--quick",
                                   "--out", str(tmp_path / "none")),
                          "no episode of task 'door-open-v3' (recorded as 'Open a door with a revolving joint'); "
                          "its 2 tasks are 'Reach a goal position', 'Press a button'")

    # A checkpoint trained on the whole folder names its tasks by their texts; the doctor finds
    # reach's among them, so the checkpoint's statistics of both tasks are read as covering
    # reach's data, not as another dataset's.
    from tests.conftest import TINY_POLICY
    from vlascope.train import TrainConfig, train

    run = train([folder], "flow", tmp_path / "run", TrainConfig(steps=2, batch_size=8, warmup_steps=1, ckpt_every=0),
                {**TINY_POLICY, "language": True}, progress=False)
    proc = run_here("doctor", "--dataset", folder, "--task", "reach-v3", "--quick",
                    "--checkpoint", str(run.last_checkpoint), "--out", str(tmp_path / "trained"))
    assert proc.returncode == 0, proc.stderr
    findings = json.loads((tmp_path / "trained" / "findings.json").read_text())
    assert [f["severity"] for f in findings if f["id"] == "normalization"] == ["ok"]
