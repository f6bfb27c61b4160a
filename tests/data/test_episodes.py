import numpy as np
import pytest

from vlascope.data import Episode, EpisodeDataset, TaskSet
from vlascope.errors import VlascopeError
from vlascope.policies.factory import build_for_episodes


def image_dataset(path: str, task: str, view: str | None) -> EpisodeDataset:
    rng = np.random.default_rng(0)
    episodes = [Episode(actions=rng.uniform(-1, 1, (12, 4)).astype(np.float32),
                        obs={"robot_state": rng.normal(size=(12, 4)).astype(np.float32),
                             "corner2_image": rng.integers(0, 255, (12, 16, 16, 3), dtype=np.uint8)})
                for _ in range(3)]
    attrs = {"task": task, **({"collection": {"camera_view": view}} if view else {})}
    return EpisodeDataset(path, episodes, attrs)


def test_a_policy_takes_its_camera_view_from_the_frames_it_trains_on():
    recorded = image_dataset("a.hdf5", "reach-v3", "lerobot")
    policy = build_for_episodes("flow", {"obs_keys": ["robot_state", "corner2_image"]}, recorded.episodes,
                                TaskSet.of([recorded]))
    assert policy.config.camera_view == "lerobot" and policy.config.image_size == 16
    # A dataset from before the view was recorded has MetaWorld's own.
    assert image_dataset("b.hdf5", "reach-v3", None).camera_view == "metaworld"


def test_datasets_rendered_from_different_views_cannot_train_one_policy():
    with pytest.raises(VlascopeError, match="different camera views"):
        TaskSet.of([image_dataset("a.hdf5", "reach-v3", "lerobot"),
                    image_dataset("b.hdf5", "push-v3", "metaworld")])
