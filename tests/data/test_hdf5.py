import h5py
import numpy as np
import pytest

from vlascope.data import Episode, read_dataset, write_dataset
from vlascope.errors import VlascopeError


def _episode(t=5):
    return Episode(actions=np.random.rand(t, 4).astype(np.float32),
                   obs={"robot_state": np.random.rand(t, 4), "img": np.zeros((t, 8, 8, 3), np.uint8)},
                   rewards=np.ones(t), attrs={"seed": 3, "initial_state": np.arange(6.0)})


def test_round_trip_keeps_layout_and_attrs(tmp_path):
    path = tmp_path / "d.hdf5"
    eps = [_episode(5), _episode(7)]
    write_dataset(path, eps, {"task": "reach-v3", "collection": {"fixed_init": False, "dropped": [1, 2]}})
    with h5py.File(path) as f:
        assert f["data/demo_1"].attrs["num_samples"] == 7
        assert f["data/demo_0/obs/img"].dtype == np.uint8
        assert f["data"].attrs["total"] == 12
    ds = read_dataset(path)
    assert ds.attrs["collection"] == {"fixed_init": False, "dropped": [1, 2]}
    assert [len(e) for e in ds.episodes] == [5, 7]
    np.testing.assert_allclose(ds.episodes[1].actions, eps[1].actions)
    np.testing.assert_allclose(ds.episodes[0].attrs["initial_state"], np.arange(6.0))
    assert read_dataset(path, obs_keys=["robot_state"]).obs_shapes == {"robot_state": (4,)}


def test_rewrite_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "d.hdf5"
    write_dataset(path, [_episode()], {})
    write_dataset(path, [_episode(), _episode()], {})
    assert len(read_dataset(path).episodes) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["d.hdf5"]


@pytest.mark.parametrize("case, message", [
    ("missing", "no such dataset file"),
    ("not_hdf5", "not a readable HDF5 file"),
    ("no_data", "no 'data' group"),
    ("no_actions", "data/demo_0: missing 'actions'"),
    ("length", "obs/robot_state: 4 steps but actions has 5"),
])
def test_bad_files_give_one_line_errors_naming_the_place(tmp_path, case, message):
    path = tmp_path / "bad.hdf5"
    if case == "not_hdf5":
        path.write_text("hello")
    elif case == "no_data":
        with h5py.File(path, "w") as f:
            f.create_group("other")
    elif case in ("no_actions", "length"):
        with h5py.File(path, "w") as f:
            g = f.create_group("data/demo_0")
            if case == "length":
                g["actions"] = np.zeros((5, 4))
            g["obs/robot_state"] = np.zeros((4, 4))
    with pytest.raises(VlascopeError) as err:
        read_dataset(path)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(path) in str(err.value)


def test_missing_obs_key_lists_what_is_there(tmp_path):
    path = tmp_path / "d.hdf5"
    write_dataset(path, [_episode()], {})
    with pytest.raises(VlascopeError, match=r"missing key 'goal' \(has: img, robot_state\)"):
        read_dataset(path, obs_keys=["goal"])
