"""A corpus of broken inputs: every one ends in a one-line error naming the file and the place
(non-zero exit, no traceback), and a fuzz test that damages valid files at random."""

from __future__ import annotations


import h5py
import numpy as np
import pytest

from vlascope.cli import main
from vlascope.data import Episode, read_dataset, write_dataset
from vlascope.errors import VlascopeError


def valid(path, demos=2, t=6):
    rng = np.random.default_rng(0)
    eps = [Episode(actions=rng.uniform(-1, 1, (t, 4)).astype(np.float32),
                   obs={"robot_state": rng.normal(size=(t, 4)), "goal": rng.normal(size=(t, 3))},
                   attrs={"seed": i}) for i in range(demos)]
    write_dataset(path, eps, {"task": "reach-v3"})
    return path


def edit(path, fn):
    with h5py.File(path, "a") as f:
        fn(f)
    return path


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


CORPUS = {
    "not_hdf5": (lambda p: (p.write_text("demo,action\n1,2\n"), p)[1], "not a readable HDF5 file"),
    "empty_file": (lambda p: (p.write_bytes(b""), p)[1], "not a readable HDF5 file"),
    "truncated": (lambda p: truncate(valid(p, demos=4, t=200)), "bad.hdf5"),
    "no_data_group": (lambda p: edit(valid(p), lambda f: f.move("data", "other")), "no 'data' group"),
    "no_demos": (lambda p: edit(valid(p), lambda f: [f["data"].pop(k) for k in list(f["data"])]),
                 "holds no demo_<i> groups"),
    "demo_without_actions": (lambda p: edit(valid(p), lambda f: f["data/demo_1"].pop("actions")),
                             "data/demo_1: missing 'actions'"),
    "empty_actions": (lambda p: edit(valid(p), lambda f: (f["data/demo_0"].pop("actions"),
                      f["data/demo_0"].create_dataset("actions", shape=(0, 4), dtype="f4"))),
                      "data/demo_0/actions: expected a non-empty"),
    "length_mismatch": (lambda p: edit(valid(p), lambda f: (f["data/demo_0/obs"].pop("goal"),
                        f["data/demo_0/obs"].create_dataset("goal", data=np.zeros((5, 3))))),
                        "data/demo_0/obs/goal: 5 steps but actions has 6"),
    "string_actions": (lambda p: edit(valid(p), lambda f: (f["data/demo_0"].pop("actions"),
                       f["data/demo_0"].create_dataset("actions", data=np.array([b"up"] * 6)))),
                       "data/demo_0/actions: expected numbers"),
    "scalar_obs": (lambda p: edit(valid(p), lambda f: (f["data/demo_0/obs"].pop("goal"),
                   f["data/demo_0/obs"].create_dataset("goal", data=np.zeros(6)))),
                   "data/demo_0/obs/goal: expected (T, dim)"),
    "demo_is_a_dataset": (lambda p: edit(valid(p), lambda f: (f["data"].pop("demo_1"),
                          f["data"].create_dataset("demo_1", data=np.zeros(3)))),
                          "data/demo_1: expected a group"),
    "action_dims_differ": (lambda p: edit(valid(p), lambda f: (f["data/demo_1"].pop("actions"),
                           f["data/demo_1"].create_dataset("actions", data=np.zeros((6, 7))))),
                           "demos disagree on the action dimension"),
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_each_broken_file_is_a_one_line_error(case, tmp_path, capsys):
    make, message = CORPUS[case]
    path = make(tmp_path / "bad.hdf5")
    code = main(["data", "inspect", str(path)])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert str(path) in err and message in err, err


def test_key_map_naming_a_missing_key(tmp_path, capsys):
    path = valid(tmp_path / "d.hdf5")
    key_map = tmp_path / "map.json"
    key_map.write_text('{"obs": {"robot_state": ["eef_pos", "gripper"]}}')
    assert main(["data", "inspect", str(path), "--key-map", str(key_map)]) != 0
    err = capsys.readouterr().err.strip()
    assert "data/demo_0/obs: the key map names ['eef_pos', 'gripper'] for 'robot_state'" in err


def test_non_finite_values_stop_training_with_their_place(tmp_path, capsys):
    path = edit(valid(tmp_path / "d.hdf5"), lambda f: f["data/demo_1/obs/goal"].__setitem__((3, 1), np.inf))
    code = main(["train", "--dataset", str(path), "--policy", "mse", "--out", str(tmp_path / "run"),
                 "--steps", "2", "--obs-keys", "robot_state", "goal"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1
    assert "data/demo_1/obs/goal: inf at step 3, dim 1" in err and "--skip-bad-demos" in err
    code = main(["train", "--dataset", str(path), "--policy", "mse", "--out", str(tmp_path / "run"),
                 "--steps", "2", "--obs-keys", "robot_state", "goal", "--skip-bad-demos"])
    captured = capsys.readouterr()
    assert code == 0 and "skipping data/demo_1" in captured.err


def test_checkpoint_that_does_not_fit_the_dataset(tmp_path, capsys):
    data = valid(tmp_path / "d.hdf5")
    assert main(["train", "--dataset", str(data), "--policy", "mse", "--out", str(tmp_path / "run"),
                 "--steps", "2", "--obs-keys", "robot_state", "goal"]) == 0
    other = tmp_path / "other.hdf5"
    rng = np.random.default_rng(1)
    write_dataset(other, [Episode(actions=rng.uniform(-1, 1, (6, 4)).astype(np.float32),
                                  obs={"robot_state": rng.normal(size=(6, 7)), "goal": rng.normal(size=(6, 3))})],
                  {"task": "reach-v3"})
    capsys.readouterr()
    code = main(["doctor", "--dataset", str(other), "--checkpoint", str(tmp_path / "run/checkpoints/last"),
                 "--quick", "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1
    assert "obs 'robot_state' has 7 dims in the dataset but the checkpoint expects 4" in err


MUTATIONS = ["flip_bytes", "drop", "reshape", "nan", "retype", "truncate"]


def test_fuzzed_files_give_a_clear_error_or_read(tmp_path_factory):
    # Imported here, not at the top: only the process that runs this test pays for Hypothesis.
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=40, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(mutation=st.sampled_from(MUTATIONS), where=st.integers(0, 10_000),
           seed=st.integers(0, 2**16))
    def damaged_file_errs_or_reads(mutation, where, seed):
        path = valid(tmp_path_factory.mktemp("fuzz") / "d.hdf5", demos=3, t=8)
        rng = np.random.default_rng(seed)
        names = []
        with h5py.File(path, "r") as f:
            f.visit(names.append)
        target = names[where % len(names)]
        if mutation == "flip_bytes":
            raw = bytearray(path.read_bytes())
            for i in rng.integers(0, len(raw), size=16):
                raw[i] ^= 0xFF
            path.write_bytes(bytes(raw))
        elif mutation == "truncate":
            raw = path.read_bytes()
            path.write_bytes(raw[: int(rng.integers(0, len(raw)))])
        else:
            with h5py.File(path, "a") as f:
                obj = f[target]
                if mutation == "drop":
                    del f[target]
                elif isinstance(obj, h5py.Dataset):
                    data = obj[()]
                    del f[target]
                    if mutation == "reshape":
                        data = np.asarray(data).reshape(-1)[: max(1, data.size - 1)]
                    elif mutation == "nan":
                        data = np.full(np.shape(data), np.nan)
                    elif mutation == "retype":
                        data = np.array([b"x"] * max(1, np.size(data)))
                    f.create_dataset(target, data=data)
        try:
            ds = read_dataset(path)
        except VlascopeError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
            return
        assert ds.episodes and all(len(e.actions) == len(v) for e in ds.episodes for v in e.obs.values())

    damaged_file_errs_or_reads()


def test_resume_after_the_dataset_changed_shape(tmp_path, capsys):
    data = valid(tmp_path / "d.hdf5")
    assert main(["train", "--dataset", str(data), "--policy", "mse", "--out", str(tmp_path / "run"),
                 "--steps", "4", "--obs-keys", "robot_state", "goal"]) == 0
    rng = np.random.default_rng(1)
    write_dataset(data, [Episode(actions=rng.uniform(-1, 1, (6, 5)).astype(np.float32),
                                 obs={"robot_state": rng.normal(size=(6, 4)), "goal": rng.normal(size=(6, 3))})],
                  {"task": "reach-v3"})
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "run"), "--steps", "8"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "actions have 5 dims in the dataset but the checkpoint predicts 4" in err


# --- LeRobot v3.0 folders --------------------------------------------------------------------

def valid_lerobot(folder, images: bool = False):
    """A small LeRobot v3.0 folder written by vlascope's exporter (two demos of six frames)."""
    from vlascope.data import EpisodeDataset
    from vlascope.data.lerobot import write_lerobot

    rng = np.random.default_rng(0)
    eps = []
    for i in range(2):
        obs = {"robot_state": rng.normal(size=(6, 4)).astype(np.float32)}
        if images:
            obs["corner2_image"] = rng.integers(0, 255, (6, 16, 16, 3), dtype=np.uint8)
        eps.append(Episode(rng.uniform(-1, 1, (6, 4)).astype(np.float32), obs, attrs={"seed": i}))
    return write_lerobot(folder, EpisodeDataset(str(folder), eps, {"task": "reach-v3"}))


def rewrite_json(path, change):
    import json

    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


def rewrite_parquet(path, change):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path).to_pydict()
    change(table)
    pq.write_table(pa.table(table), path)


DATA = "data/chunk-000/file-000.parquet"
EPISODES = "meta/episodes/chunk-000/file-000.parquet"
VIDEO = "videos/observation.images.corner2/chunk-000/file-000.mp4"

LEROBOT_CORPUS = {  # a broken folder -> what the one-line error names
    "data_file_missing": (lambda f: (f / DATA).unlink(), "data: no parquet files"),
    "data_file_truncated": (lambda f: truncate(f / DATA), "unreadable parquet"),
    "episodes_missing": (lambda f: (f / EPISODES).unlink(), "meta/episodes: no parquet files"),
    "episodes_truncated": (lambda f: truncate(f / EPISODES), "meta/episodes: unreadable parquet"),
    "tasks_missing": (lambda f: (f / "meta/tasks.parquet").unlink(), "meta/tasks.parquet: missing"),
    "info_not_json": (lambda f: (f / "meta/info.json").write_text("{fps: 80"), "meta/info.json: unreadable"),
    "info_without_fps": (lambda f: rewrite_json(f / "meta/info.json", lambda i: i.pop("fps")),
                         "'fps' must be a positive number"),
    "features_not_objects": (lambda f: rewrite_json(f / "meta/info.json",
                                                    lambda i: i.__setitem__("features", ["action"])),
                             "'features' must map each feature"),
    "shape_contradicts_data": (lambda f: rewrite_json(
        f / "meta/info.json", lambda i: i["features"]["observation.state"].__setitem__("shape", [7])),
        "column 'observation.state' has 4 values per row, meta/info.json says shape [7]"),
    "feature_not_in_data": (lambda f: rewrite_parquet(f / DATA, lambda t: t.pop("observation.state")),
                            "no column 'observation.state'"),
    "episode_beyond_data": (lambda f: rewrite_parquet(
        f / EPISODES, lambda t: t.__setitem__("dataset_to_index", [6, 40])), "episode 1 spans rows 6-40"),
    "video_missing": (lambda f: (f / VIDEO).unlink(), "missing video file"),
    "video_truncated": (lambda f: truncate(f / VIDEO), VIDEO),
}


@pytest.mark.parametrize("case", sorted(LEROBOT_CORPUS))
def test_each_broken_lerobot_folder_is_a_one_line_error(case, tmp_path, capsys):
    damage, message = LEROBOT_CORPUS[case]
    folder = valid_lerobot(tmp_path / "bad", images=case.startswith("video"))
    damage(folder)
    code = main(["data", "inspect", str(folder)])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert str(folder) in err and message in err, err


LEROBOT_PROBLEMS = {  # metadata that contradicts the data but can be read past -> the named problem
    "total_frames_wrong": (lambda f: rewrite_json(f / "meta/info.json", lambda i: i.__setitem__("total_frames", 99)),
                           "info.json: total_frames is 99, the data has 12"),
    "timestamps_at_another_fps": (lambda f: rewrite_parquet(
        f / DATA, lambda t: t.__setitem__("timestamp", [x * 2 for x in t["timestamp"]])), "timestamp of episode 0"),
    "stats_of_other_data": (lambda f: rewrite_json(
        f / "meta/stats.json", lambda s: s["action"].__setitem__("mean", [5.0] * 4)), "meta/stats.json: 'action'"),
    "stats_missing": (lambda f: (f / "meta/stats.json").unlink(), "meta/stats.json: missing"),
    "frame_index_restarts": (lambda f: rewrite_parquet(
        f / DATA, lambda t: t.__setitem__("frame_index", [0, 1, 2, 0, 1, 2] * 2)), "frame_index of episode 0"),
}


@pytest.mark.parametrize("case", sorted(LEROBOT_PROBLEMS))
def test_contradicting_lerobot_metadata_is_a_named_warning(case, tmp_path):
    from vlascope.doctor import DoctorContext
    from vlascope.doctor.data_checks import check_dataset_format

    damage, message = LEROBOT_PROBLEMS[case]
    folder = valid_lerobot(tmp_path / "odd")
    assert read_dataset(str(folder)).problems == []
    damage(folder)
    data = read_dataset(str(folder))  # read as stored, nothing silently dropped
    assert len(data.episodes) == 2 and any(message in p for p in data.problems), data.problems
    [finding] = check_dataset_format(DoctorContext(dataset=data, out_dir=tmp_path / "r", quick=True))
    assert finding.id == "dataset-format" and finding.severity == "warning"
