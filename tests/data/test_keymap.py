"""Key maps: a robomimic-style file with other names reads as vlascope's keys."""

import h5py
import numpy as np
import pytest

from vlascope.data import read_dataset
from vlascope.data.keymap import load_key_map
from vlascope.errors import VlascopeError


def _foreign_file(path, t=6):
    with h5py.File(path, "w") as f:
        g = f.create_group("data/demo_0")
        g["action"] = np.arange(t * 7, dtype=np.float32).reshape(t, 7)
        g["obs/robot0_eef_pos"] = np.ones((t, 3), np.float32)
        g["obs/robot0_gripper_qpos"] = np.full((t, 2), 2.0, np.float32)
        g["obs/object"] = np.zeros((t, 10), np.float32)


def test_key_map_renames_and_concatenates(tmp_path):
    path = tmp_path / "robomimic.hdf5"
    _foreign_file(path)
    spec = tmp_path / "map.yaml"
    spec.write_text("actions: action\nobs:\n  robot_state: [robot0_eef_pos, robot0_gripper_qpos]\n"
                    "  object_state: object\n")
    ds = read_dataset(path, key_map=str(spec))
    ep = ds.episodes[0]
    assert ep.actions.shape == (6, 7)
    np.testing.assert_array_equal(ep.obs["robot_state"][0], [1, 1, 1, 2, 2])
    assert ds.obs_shapes["object_state"] == (10,)
    subset = read_dataset(path, obs_keys=["robot_state"], key_map=str(spec))
    assert set(subset.obs_shapes) == {"robot_state"}


def test_without_a_key_map_the_error_says_to_use_one(tmp_path):
    path = tmp_path / "robomimic.hdf5"
    _foreign_file(path)
    with pytest.raises(VlascopeError, match="missing 'actions' dataset; name it with --key-map"):
        read_dataset(path)


@pytest.mark.parametrize("text, message", [
    ("obs: [a, b]\n", "'obs' must map"),
    ("actions: 3\n", "'actions' must be a path string"),
    ("other: x\n", "expected a mapping with keys among"),
    ("obs:\n  robot_state: []\n", "must map to a key name"),
])
def test_bad_key_maps_are_one_line_errors(tmp_path, text, message):
    spec = tmp_path / "map.yaml"
    spec.write_text(text)
    with pytest.raises(VlascopeError, match=message):
        load_key_map(str(spec))


def test_key_map_naming_a_missing_key_says_which(tmp_path):
    path = tmp_path / "robomimic.hdf5"
    _foreign_file(path)
    with pytest.raises(VlascopeError, match=r"names \['eef'\] for 'robot_state'.*has: object"):
        read_dataset(path, key_map={"actions": "action", "obs": {"robot_state": "eef"}})


REPO = __import__("pathlib").Path(__file__).parents[2]


def test_shipped_robomimic_map(tmp_path):
    path = tmp_path / "lift.hdf5"
    with h5py.File(path, "w") as f:
        for i in range(2):
            g = f.create_group(f"data/demo_{i}")
            g["actions"] = np.zeros((5, 7), np.float32)
            g["obs/robot0_eef_pos"] = np.ones((5, 3))
            g["obs/robot0_eef_quat"] = np.full((5, 4), 2.0)
            g["obs/robot0_gripper_qpos"] = np.full((5, 2), 3.0)
            g["obs/object"] = np.zeros((5, 10))
            g["obs/agentview_image"] = np.zeros((5, 84, 84, 3), np.uint8)
            g["obs/robot0_eye_in_hand_image"] = np.zeros((5, 84, 84, 3), np.uint8)
    ds = read_dataset(path, key_map=REPO / "configs/key_mappings/robomimic.json")
    assert ds.obs_shapes["robot_state"] == (9,) and ds.obs_shapes["agentview_image"] == (84, 84, 3)
    np.testing.assert_array_equal(ds.episodes[1].obs["robot_state"][0], [1] * 3 + [2] * 4 + [3] * 2)


def test_shipped_cosmos_map_builds_a_27_dim_proprio_and_reads_the_instruction(tmp_path):
    import json

    path = tmp_path / "robocasa.hdf5"
    dims = {"robot0_joint_pos": 9, "robot0_joint_vel": 9, "robot0_eef_pos": 3,
            "robot0_eef_quat": 4, "robot0_gripper_qpos": 2}
    with h5py.File(path, "w") as f:
        for i in range(3):
            g = f.create_group(f"data/demo_{i}")
            g.attrs["ep_meta"] = json.dumps({"lang": "open the drawer", "layout_id": 3})
            g["actions"] = np.zeros((4, 12), np.float32)
            for k, d in dims.items():
                g[f"obs/{k}"] = np.full((4, d), float(d))
            g["obs/robot0_agentview_left_image"] = np.zeros((4, 64, 64, 3), np.uint8)
            g["obs/robot0_eye_in_hand_image"] = np.zeros((4, 64, 64, 3), np.uint8)
    ds = read_dataset(path, key_map=REPO / "configs/key_mappings/cosmos.json")
    assert ds.obs_shapes["robot_state"] == (27,) and ds.action_dim == 12
    assert ds.attrs["instruction"] == "open the drawer"
    assert ds.episodes[2].attrs["instruction"] == "open the drawer"
    only = read_dataset(path, obs_keys=["robot_state"], key_map=REPO / "configs/key_mappings/cosmos.json")
    assert set(only.obs_shapes) == {"robot_state"}


def test_demos_pattern_reads_other_groupings(tmp_path):
    path = tmp_path / "episodes.hdf5"
    with h5py.File(path, "w") as f:
        for i in (10, 2):
            g = f.create_group(f"episodes/ep{i}")
            g["act"] = np.full((3, 2), float(i), np.float32)
            g["state/pos"] = np.zeros((3, 3))
    spec = {"demos": "episodes/ep*", "actions": "act", "obs": {"robot_state": "state/pos"}}
    ds = read_dataset(path, key_map=spec)
    assert [e.name for e in ds.episodes] == ["ep2", "ep10"]
    with pytest.raises(VlascopeError, match="no group matches the key map's demos pattern 'x/\\*'"):
        read_dataset(path, key_map={**spec, "demos": "x/*"})
