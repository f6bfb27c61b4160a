"""vlascope's MetaWorld camera against LeRobot's MetaWorld environment (lerobot 0.6.1), in the
LeRobot tier: the same initial state must give the same corner2 frame and the same hand state,
so that a dataset or a policy moves between the two unchanged."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lerobot", reason="the LeRobot tier runs with `make test-lerobot`")

from tests.conftest import needs_rendering  # noqa: E402
from vlascope.envs import MetaWorldEnv  # noqa: E402


@needs_rendering
@pytest.mark.parametrize("view, matches", [("lerobot", True), ("metaworld", False)])
def test_corner2_frames_match_lerobots_metaworld_environment(view, matches):
    from lerobot.envs.metaworld import MetaworldEnv

    theirs = MetaworldEnv("pick-place-v3", obs_type="pixels_agent_pos")
    theirs.reset(seed=3)
    ours = MetaWorldEnv("pick-place-v3", camera="corner2", image_size=theirs.render().shape[0],
                        camera_view=view)
    # The same placement of puck and goal: LeRobot's env drew it; ours is reset to it. Both are
    # compared after one step: LeRobot's reset frame still shows the model's default placement
    # (MetaWorld's reset runs no forward kinematics), ours the placed scene.
    ours.reset(0, initial_state=np.asarray(theirs._env._last_rand_vec))
    action = np.array([0.1, -0.1, 0.0, 0.0])
    observation = theirs.step(action)[0]
    frame = theirs.render()
    obs = ours.step(action)[0]
    difference = np.abs(obs["corner2_image"].astype(int) - frame.astype(int)).mean()
    assert (difference < 1.0) == matches, difference
    np.testing.assert_allclose(obs["robot_state"], observation["agent_pos"], atol=1e-5)
