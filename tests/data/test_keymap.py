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
    ("actions: 3\n", "'actions' must be the name"),
    ("other: x\n", "expected a mapping"),
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
