"""Shared fixtures: tiny but real MetaWorld datasets and policies."""

from __future__ import annotations

import ctypes.util
import os

import pytest

os.environ.setdefault("MUJOCO_GL", "osmesa")
if os.environ.get("PYTEST_XDIST_WORKER"):  # `pytest -n N`: one core a worker, not N threads each
    import torch

    torch.set_num_threads(1)
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

HAS_OSMESA = ctypes.util.find_library("OSMesa") is not None
needs_rendering = pytest.mark.skipif(
    os.environ["MUJOCO_GL"] == "osmesa" and not HAS_OSMESA,
    reason="libosmesa6 is not installed (make test installs it when run as root)")

TINY_POLICY = {"encoder_hidden": 32, "cond_dim": 32, "mlp_width": 32, "mlp_depth": 1,
               "unet_dims": [16, 32], "horizon": 8, "n_action_steps": 4}
TINY_ACT = {"dim": 32, "heads": 4, "ff_dim": 64, "encoder_layers": 1, "cvae_layers": 1,
            "latent_dim": 8, "horizon": 8, "n_action_steps": 4}
TINY_VLA = {"dim": 32, "heads": 4, "expert_layers": 1, "queries": 2, "cond_dim": 32,
            "mlp_width": 32, "mlp_depth": 1, "horizon": 8, "n_action_steps": 4}
TINY_VISION = {"vision_widths": [8, 8, 16, 16], "vision_features": 16, "vision_pool": "avg"}


def tiny(name: str) -> dict:
    """32-wide options for policy `name`."""
    return dict({"act": TINY_ACT, "vla": TINY_VLA}.get(name, TINY_POLICY))


def shared_file(tmp_path_factory, name: str, make) -> str:
    """A file that `make(path)` writes once per test run, read by every test that asks for it.

    Session fixtures are per process, and under pytest-xdist every worker would collect the same
    demos again (two rendered pick-place demos cost tens of seconds on a CPU). The run's folder,
    shared by its workers, holds one copy: the first worker to ask writes it under a lock, the
    others wait for it. Tests only read these files."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this run's folder; each worker's own basetemp lies inside it
    folder = root / "shared"
    folder.mkdir(exist_ok=True)
    path = folder / name
    with FileLock(str(folder / f"{name}.lock")):
        if not path.exists():  # datasets are written atomically: one that exists is complete
            make(str(path))
    return str(path)


def collected(tmp_path_factory, name: str, task: str, episodes: int, **kwargs) -> str:
    """`episodes` expert demos of `task` from seed 0, collected once per run (shared_file)."""
    from vlascope.envs.collect import collect_demos

    return shared_file(tmp_path_factory, name,
                       lambda path: collect_demos(task, episodes, path, seed=0, progress=False, **kwargs))


@pytest.fixture(scope="session")
def reach_dataset(tmp_path_factory) -> str:
    """Two diverse reach-v3 expert demos, collected for real."""
    return collected(tmp_path_factory, "reach.hdf5", "reach-v3", 2)


@pytest.fixture(scope="session")
def button_dataset(tmp_path_factory) -> str:
    """One button-press-v3 expert demo: a second task beside reach."""
    return collected(tmp_path_factory, "button.hdf5", "button-press-v3", 1)


def two_task_lerobot_folder(reach_dataset, button_dataset, path):
    """reach-v3's and button-press-v3's demos in one LeRobot folder, each under its own task text,
    as LeRobot's multi-task MetaWorld datasets hold them."""
    from dataclasses import replace

    from vlascope.data import read_dataset
    from vlascope.data.episodes import EpisodeDataset
    from vlascope.data.lerobot import write_lerobot

    episodes = []
    for source in (reach_dataset, button_dataset):
        data = read_dataset(source)
        episodes += [replace(e, attrs={**e.attrs, "instruction": data.attrs["instruction"]}) for e in data.episodes]
    return write_lerobot(path, EpisodeDataset(str(path), episodes, {"instruction": ""}))


@pytest.fixture(scope="session")
def trained_run(reach_dataset, tmp_path_factory):
    """A 32-wide flow policy trained for 5 steps on the 2-demo dataset."""
    from vlascope.train import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "flow"
    return train([reach_dataset], "flow", out, TrainConfig(steps=5, batch_size=8, warmup_steps=2,
                                                           log_every=1, ckpt_every=3),
                 dict(TINY_POLICY), progress=False)


@pytest.fixture(scope="session")
def pick_place_images(tmp_path_factory) -> str:
    """Two pick-place demos with 32x32 corner2 images (rendered with osmesa)."""
    return collected(tmp_path_factory, "pick-place-images.hdf5", "pick-place-v3", 2, camera="corner2",
                     image_size=32)


@pytest.fixture(scope="session")
def pick_place_12(tmp_path_factory) -> str:
    """Twelve pick-place demos: enough that a neighbour in another demo shares the situation
    (the doctor's observability check)."""
    return collected(tmp_path_factory, "pick-place-12.hdf5", "pick-place-v3", 12)


# Tests that start other Python processes (training runs killed mid-save, a two-process
# accelerate launch) take a quarter of a minute each and are collected last: run them first, so
# that pytest-xdist does not end on one of them while the other workers sit idle.
STARTED_FIRST = ("tests/train/test_crash.py", "tests/train/test_distributed.py")
# The tests that torch.compile run in one process (`--dist loadgroup`): the first builds
# inductor's precompiled header and compile workers, which the second then reuses.
COMPILED = ("tests/train/test_loop.py::test_compiled_training_step_trains_and_saves",
            "tests/evaluate/test_runner.py::test_a_compiled_policy_gives_the_same_episodes")


def pytest_collection_modifyitems(items):
    for item in items:
        if item.nodeid.startswith(COMPILED):
            item.add_marker(pytest.mark.xdist_group("torch-compile"))
    items.sort(key=lambda item: not item.nodeid.startswith(STARTED_FIRST + COMPILED))  # stable sort
