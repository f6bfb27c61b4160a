"""MetaWorld tasks: construction, seeded initial states, observation split and task signals.

MetaWorld's flat 39-dim observation is [hand xyz, gripper, object (14), previous frame (18),
goal xyz]. We store it split into named keys and drop the previous frame: a policy that wants
history gets it from its own observation window.
"""

from __future__ import annotations

import difflib
import os
import warnings
from dataclasses import dataclass

import numpy as np

from vlascope.errors import VlascopeError

OBS_SLICES = {
    "robot_state": slice(0, 4),  # hand xyz + gripper opening
    "object_state": slice(4, 18),  # up to two objects: xyz + quaternion each, zero padded
    "goal": slice(36, 39),  # goal xyz
}
OBS_KEYS = tuple(OBS_SLICES)

# One instruction per task: MetaWorld's task descriptions as LeRobot's MetaWorld environment
# gives them, so that a language-conditioned policy reads the same text in either.
INSTRUCTIONS = {
    "assembly-v3": "Pick up a nut and place it onto a peg",
    "basketball-v3": "Dunk the basketball into the basket",
    "bin-picking-v3": "Grasp the puck from one bin and place it into another bin",
    "box-close-v3": "Grasp the cover and close the box with it",
    "button-press-topdown-v3": "Press a button from the top",
    "button-press-topdown-wall-v3": "Bypass a wall and press a button from the top",
    "button-press-v3": "Press a button",
    "button-press-wall-v3": "Bypass a wall and press a button",
    "coffee-button-v3": "Push a button on the coffee machine",
    "coffee-pull-v3": "Pull a mug from a coffee machine",
    "coffee-push-v3": "Push a mug under a coffee machine",
    "dial-turn-v3": "Rotate a dial 180 degrees",
    "disassemble-v3": "Pick a nut out of a peg",
    "door-close-v3": "Close a door with a revolving joint",
    "door-lock-v3": "Lock the door by rotating the lock clockwise",
    "door-open-v3": "Open a door with a revolving joint",
    "door-unlock-v3": "Unlock the door by rotating the lock counter-clockwise",
    "drawer-close-v3": "Push and close a drawer",
    "drawer-open-v3": "Open a drawer",
    "faucet-close-v3": "Rotate the faucet clockwise",
    "faucet-open-v3": "Rotate the faucet counter-clockwise",
    "hammer-v3": "Hammer a screw on the wall",
    "hand-insert-v3": "Insert the gripper into a hole",
    "handle-press-side-v3": "Press a handle down sideways",
    "handle-press-v3": "Press a handle down",
    "handle-pull-side-v3": "Pull a handle up sideways",
    "handle-pull-v3": "Pull a handle up",
    "lever-pull-v3": "Pull a lever down 90 degrees",
    "peg-insert-side-v3": "Insert a peg sideways",
    "peg-unplug-side-v3": "Unplug a peg sideways",
    "pick-out-of-hole-v3": "Pick up a puck from a hole",
    "pick-place-v3": "Pick and place a puck to a goal",
    "pick-place-wall-v3": "Pick a puck, bypass a wall and place the puck",
    "plate-slide-back-side-v3": "Get a plate from the cabinet sideways",
    "plate-slide-back-v3": "Get a plate from the cabinet",
    "plate-slide-side-v3": "Slide a plate into a cabinet sideways",
    "plate-slide-v3": "Slide a plate into a cabinet",
    "push-back-v3": "Push the puck to a goal",
    "push-v3": "Push the puck to a goal",
    "push-wall-v3": "Bypass a wall and push a puck to a goal",
    "reach-v3": "Reach a goal position",
    "reach-wall-v3": "Bypass a wall and reach a goal",
    "shelf-place-v3": "Pick and place a puck onto a shelf",
    "soccer-v3": "Kick a soccer into the goal",
    "stick-pull-v3": "Grasp a stick and pull a box with the stick",
    "stick-push-v3": "Grasp a stick and push a box using the stick",
    "sweep-into-v3": "Sweep a puck into a hole",
    "sweep-v3": "Sweep a puck off the table",
    "window-close-v3": "Push and close a window",
    "window-open-v3": "Push and open a window",
}

# MT50's tasks by difficulty, as LeRobot's MetaWorld environment groups them (the splits that
# published MT50 results report).
DIFFICULTY_SPLITS = {
    "easy": (
        "button-press-v3", "button-press-topdown-v3", "button-press-topdown-wall-v3",
        "button-press-wall-v3", "coffee-button-v3", "dial-turn-v3", "door-close-v3",
        "door-lock-v3", "door-open-v3", "door-unlock-v3", "drawer-close-v3", "drawer-open-v3",
        "faucet-close-v3", "faucet-open-v3", "handle-press-v3", "handle-press-side-v3",
        "handle-pull-v3", "handle-pull-side-v3", "lever-pull-v3", "plate-slide-v3",
        "plate-slide-back-v3", "plate-slide-back-side-v3", "plate-slide-side-v3", "reach-v3",
        "reach-wall-v3", "window-close-v3", "window-open-v3", "peg-unplug-side-v3",
    ),
    "medium": (
        "basketball-v3", "bin-picking-v3", "box-close-v3", "coffee-pull-v3", "coffee-push-v3",
        "hammer-v3", "peg-insert-side-v3", "push-wall-v3", "soccer-v3", "sweep-v3",
        "sweep-into-v3",
    ),
    "hard": (
        "assembly-v3", "hand-insert-v3", "pick-out-of-hole-v3", "pick-place-v3", "push-v3",
        "push-back-v3",
    ),
    "very_hard": (
        "shelf-place-v3", "disassemble-v3", "stick-pull-v3", "stick-push-v3",
        "pick-place-wall-v3",
    ),
}

# How the cameras see the scene. "lerobot" is LeRobot's MetaWorld environment (lerobot 0.6.1,
# envs/metaworld.py): corner2 moved to LEROBOT_CORNER2_POS and its frames turned upright (flipped
# on both axes), so that a dataset or a policy moves between LeRobot and vlascope unchanged.
# "metaworld" is MetaWorld's own corner2, whose frames come out upside down: what vlascope
# datasets recorded before they carried a camera_view.
CAMERA_VIEWS = ("lerobot", "metaworld")
LEROBOT_CORNER2_POS = (0.75, 0.075, 0.7)


def shadow_map_size(image_size: int) -> int:
    """The shadow map drawn for frames of `image_size` px: the smallest power of two at least 8x
    the frame, between 1024 and the 4096 MetaWorld's models ask for. MetaWorld draws a 4096 px
    shadow map for every frame whatever its size; at policy resolutions almost none of it reaches
    the frame, yet drawing it is most of a frame's cost on GPUs with few graphics units (H100).
    Frames with the smaller map differ from MetaWorld's by a fraction of a grey level on average
    (`benchmarks/render_speed.py --shadow-sizes`; figures on the results page)."""
    size = 1024
    while size < 8 * image_size and size < 4096:
        size *= 2
    return size


# Tasks where "grasped" means something; elsewhere the grasp signal is reported as n/a.
GRASP_TASKS = {
    "pick-place-v3", "pick-place-wall-v3", "pick-out-of-hole-v3", "bin-picking-v3",
    "basketball-v3", "assembly-v3", "disassemble-v3", "hammer-v3", "shelf-place-v3",
    "peg-insert-side-v3", "stick-push-v3", "stick-pull-v3", "coffee-pull-v3",
}
# Tasks without an object to reach for: "reached" is n/a there.
NO_OBJECT_TASKS = {"reach-v3", "reach-wall-v3"}
REACH_RADIUS = 0.05  # metres between gripper centre and object that count as "reached"
LIFT_HEIGHT = 0.01  # metres above its start an object held by the gripper must be to count as "grasped"

# MetaWorld's experts warn that their gains exceed the action bounds (the env clips), and its
# observation space is narrower than what it returns; neither is actionable for our users.
warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high")

MT50_TASKS = tuple(sorted(INSTRUCTIONS))
MT10_TASKS = (
    "reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3",
    "drawer-close-v3", "button-press-topdown-v3", "peg-insert-side-v3",
    "window-open-v3", "window-close-v3",
)
# Names that stand for several tasks wherever tasks are listed.
TASK_SETS = {"mt10": MT10_TASKS, "mt50": MT50_TASKS}


def task_names() -> list[str]:
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    return sorted(ALL_V3_ENVIRONMENTS)


def check_task(task: str) -> str:
    names = task_names()
    if task not in names:
        close = difflib.get_close_matches(task, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; run `vlascope tasks` for the list"
        raise VlascopeError(f"unknown MetaWorld task '{task}'{hint}")
    return task


def expand_tasks(names: list[str], sets: dict = TASK_SETS) -> list[str]:
    """The MetaWorld tasks `names` stand for, each the name of one of `sets` or of a task,
    checked (check_task's one-line error for a name that is neither)."""
    return [check_task(t) for name in names for t in sets.get(name, [name])]


def instruction_for(task: str) -> str:
    return INSTRUCTIONS.get(task, task.removesuffix("-v3").replace("-", " "))


def difficulty_of(task: str) -> str:
    return next(split for split, tasks in DIFFICULTY_SPLITS.items() if task in tasks)


def make_expert(task: str):
    """MetaWorld's own scripted expert for `task`."""
    from metaworld.policies import ENV_POLICY_MAP

    check_task(task)
    if task not in ENV_POLICY_MAP:
        raise VlascopeError(f"MetaWorld ships no scripted expert for task '{task}'")
    return ENV_POLICY_MAP[task]()


def episode_seed(base_seed: int, index: int, split: str) -> int:
    """Seed of episode `index`: even for collection, odd for evaluation, so the two never meet."""
    if not 0 <= index < 100_000:
        raise ValueError("episode index must be in [0, 100000)")
    parity = {"collect": 0, "eval": 1}[split]
    return 2 * (base_seed * 100_000 + index) + parity


def split_observation(flat: np.ndarray) -> dict[str, np.ndarray]:
    return {key: np.asarray(flat[s], dtype=np.float32) for key, s in OBS_SLICES.items()}


@dataclass
class StepInfo:
    reward: float
    success: bool
    reached: bool | None
    grasped: bool | None
    object_to_goal: float
    unstable: bool


class MetaWorldEnv:
    """One MetaWorld task whose initial state is drawn from the task's reset space by a seed.

    Built as `gymnasium.make("Meta-World/MT1", ...)` builds it (`_make_mt1`). MT1 samples one of
    50 pre-drawn task variations per reset; we switch that off and draw a fresh object/goal
    placement from the env's own random reset space, seeded per episode, so every seed is its
    own initial state and collection and evaluation seeds can be kept disjoint.

    `shadow_size` is the shadow map's size in px; by default `shadow_map_size(image_size)`, which
    draws frames several times faster than MetaWorld's own 4096 and looks the same at that size.
    """

    def __init__(self, task: str, camera: str | list[str] | None = None, image_size: int = 96,
                 max_steps: int | None = None, image_obs: bool = True, camera_view: str = "lerobot",
                 shadow_size: int | None = None):
        from metaworld.wrappers import RandomTaskSelectWrapper

        self.task = check_task(task)
        if camera_view not in CAMERA_VIEWS:
            raise VlascopeError(f"unknown camera_view '{camera_view}'; expected one of {', '.join(CAMERA_VIEWS)}")
        self.camera_view = camera_view
        self.cameras = [camera] if isinstance(camera, str) else list(camera or [])
        self.camera = self.cameras[0] if self.cameras else None  # the one videos show
        self.image_obs = image_obs and bool(self.cameras)  # else the camera is for video only
        kwargs = {}
        if self.cameras:
            _check_rendering()
            kwargs = dict(render_mode="rgb_array", camera_name=self.camera,
                          width=image_size, height=image_size)
        try:
            self.env = _make_mt1(task, max_steps, **kwargs)
        except ValueError as exc:  # e.g. an unknown camera name
            raise VlascopeError(f"cannot build MetaWorld env '{task}': {exc}") from None
        self.env.reset()  # MT1 sets a task on its first reset; later resets keep ours
        wrapper = self.env
        while wrapper is not None:
            if isinstance(wrapper, RandomTaskSelectWrapper):
                wrapper.toggle_sample_tasks_on_reset(False)
            wrapper = getattr(wrapper, "env", None)
        self.max_steps = max_steps or self.env.unwrapped.max_path_length
        self.camera_ids = {}
        if self.cameras:
            import mujoco

            model = self.env.unwrapped.model
            for name in self.cameras:
                cid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name)
                if cid < 0:
                    raise VlascopeError(f"MetaWorld env '{task}' has no camera '{name}'")
                self.camera_ids[name] = cid
            if camera_view == "lerobot" and "corner2" in self.camera_ids:
                model.cam_pos[self.camera_ids["corner2"]] = LEROBOT_CORNER2_POS
            # Read when the renderer is made, at the first frame.
            model.vis.quality.shadowsize = shadow_size or shadow_map_size(image_size)
            # The offscreen buffer frames are drawn into: MetaWorld's models ask for 640x480 with
            # multisampling, which osmesa clears and resolves whole for every frame. Frames
            # drawn into one of their own size are the same pixels, drawn faster.
            vis = model.vis.global_
            if image_size <= min(vis.offwidth, vis.offheight):
                vis.offwidth = vis.offheight = image_size
        self.shadow_size = int(self.env.unwrapped.model.vis.quality.shadowsize) if self.cameras else None
        self.initial_state: np.ndarray | None = None
        self.last_flat_obs: np.ndarray | None = None
        self._main_geom = main_object_geom(self.env.unwrapped) if self.task in GRASP_TASKS else None

    @property
    def unwrapped(self):
        return self.env.unwrapped

    def reset(self, seed: int, initial_state: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Reset to the placement drawn by `seed`, or exactly to `initial_state` when given."""
        flat = self._forward_after_reset(self.metaworld_reset(seed, initial_state))
        self.initial_state = np.array(self.env.unwrapped._last_rand_vec, dtype=np.float64)
        self.last_flat_obs = flat
        self._object_start_z = float(flat[6])
        return self._observation(flat)

    def metaworld_reset(self, seed: int, initial_state: np.ndarray | None = None) -> np.ndarray:
        """MetaWorld's own reset to the placement `seed` draws (or to `initial_state`): its flat
        observation, taken before the forward pass `reset` adds (see _forward_after_reset)."""
        u = self.env.unwrapped
        if initial_state is not None:
            u._freeze_rand_vec = True
            u._last_rand_vec = np.asarray(initial_state, dtype=np.float64).copy()
        else:
            u._freeze_rand_vec = False
            u.seeded_rand_vec = True
            u.seed(int(seed))
        flat, _ = self.env.reset()
        return flat

    def _forward_after_reset(self, flat: np.ndarray) -> np.ndarray:
        """The reset observation of the scene as it is now placed.

        MetaWorld's reset moves objects and goal sites (model body and site positions, joint
        positions) without running MuJoCo's forward kinematics, so until the first step the
        positions it reads, and the frame the renderer draws, are the previous episode's
        placement (or the model's default): a policy's first decision would see another scene,
        and every recorded demo would start with a frame that contradicts its own actions. One
        forward pass computes the derived positions from the new state; it changes no state
        variable, so the episode's physics is the same (to rounding: the constraint solver's
        warm start differs). The frame stack is rebuilt as MetaWorld's reset builds it: the
        previous frame equal to the current one.
        """
        import mujoco

        u = self.env.unwrapped
        mujoco.mj_forward(u.model, u.data)
        current = u._get_curr_obs_combined_no_goal()
        flat = np.array(flat, dtype=np.float64)
        flat[0:18] = current
        flat[18:36] = current
        u._prev_obs = current.copy()
        return flat

    def step(self, action: np.ndarray, render: bool = True) -> tuple[dict[str, np.ndarray], StepInfo, bool]:
        """Returns (observation, info, episode_over). `render=False` leaves the camera frames out
        of this step's observation (rendering costs more than the physics step)."""
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        flat, reward, terminated, truncated, info = self.env.step(action)
        self.last_flat_obs = flat
        u = self.env.unwrapped
        obj = np.asarray(flat[4:7])
        reached = None
        if self.task not in NO_OBJECT_TASKS:
            reached = bool(np.linalg.norm(u.tcp_center - obj) <= REACH_RADIUS)
        grasped = None
        if self.task in GRASP_TASKS:
            # MetaWorld's own grasp_success needs a 2 cm lift, which misses grasps towards low
            # goals; touching the object while it is off the table is what a person would call it.
            touching = self._touching_object(info)
            grasped = None if touching is None else bool(touching and obj[2] - self._object_start_z > LIFT_HEIGHT)
        step_info = StepInfo(
            reward=float(reward),
            success=bool(info.get("success", 0.0)),
            reached=reached,
            grasped=grasped,
            object_to_goal=float(info.get("obj_to_target", np.nan)),
            unstable=bool(getattr(u, "_did_see_sim_exception", False)),
        )
        return self._observation(flat, render), step_info, bool(terminated or truncated)

    def _touching_object(self, info: dict) -> bool | None:
        """Both finger pads in contact with the task's main object; None where the task names
        no object geom we can find and reports no grasp of its own (the signal is missing)."""
        if self._main_geom is not None:
            return bool(self.env.unwrapped.touching_object(self._main_geom))
        if "grasp_success" in info:
            return bool(info["grasp_success"])
        return None

    def render(self, camera: str | None = None) -> np.ndarray:
        if self.camera is None:
            raise VlascopeError("this env was built without a camera; pass --camera to render")
        # One renderer serves every camera: point it at the one asked for.
        name = camera or self.camera
        renderer = self.env.unwrapped.mujoco_renderer
        renderer.camera_id = self.camera_ids[name]
        # Each env draws in a GL context of its own, holding its model's meshes and textures, but
        # gymnasium makes it current only when it is created. In a process with several envs (an
        # evaluation worker holds eight) an env would otherwise draw in the context made last,
        # with another task's meshes and textures: blank frames, other objects, a view from
        # elsewhere.
        renderer._get_viewer("rgb_array").make_context_current()
        frame = self.env.render()
        if self.camera_view == "lerobot" and name == "corner2":
            frame = frame[::-1, ::-1]
        return np.ascontiguousarray(frame)

    def goal_marker_pixels(self, camera: str | None = None) -> int:
        """How many pixels of `camera`'s frame the goal markers cover in the scene as it is: the
        sites MetaWorld places at the goal (named "goal", "mug_goal", ...), drawn against the
        frame with them hidden. 0 where the task has none, or the scene hides them."""
        import mujoco

        model = self.env.unwrapped.model
        sites = [i for i in range(model.nsite)
                 if "goal" in (mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_SITE, i) or "")]
        if not sites:
            return 0
        shown = self.render(camera).astype(np.int16)
        colours = model.site_rgba[sites].copy()
        model.site_rgba[sites, 3] = 0.0
        try:
            hidden = self.render(camera).astype(np.int16)
        finally:
            model.site_rgba[sites] = colours
        return int((np.abs(shown - hidden).max(-1) > 0).sum())

    def _observation(self, flat: np.ndarray, render: bool = True) -> dict[str, np.ndarray]:
        obs = split_observation(flat)
        if self.image_obs and render:
            for name in self.cameras:
                obs[f"{name}_image"] = self.render(name)
        return obs

    def close(self) -> None:
        self.env.close()


def _make_mt1(task: str, max_steps: int | None, **render_kwargs):
    """The env `gymnasium.make("Meta-World/MT1", env_name=task, seed=0, max_episode_steps=max_steps,
    disable_env_checker=True, **render_kwargs)` returns, wrapper for wrapper, without pre-drawing
    MT1's task variations: MT1 resets a throwaway env once per variation to draw them, and we
    replace the variation on every reset anyway (`MetaWorldEnv.reset`). The one variation kept is
    MT1's first draw; it stands in each of MT1's slots, so that the first reset's choice among them
    draws from the env's generator exactly as MT1's does."""
    import pickle

    import gymnasium as gym
    import metaworld
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS, ML1_ARGS_KWARGS
    from metaworld.types import Task
    from metaworld.wrappers import (
        AutoTerminateOnSuccessWrapper,
        CheckpointWrapper,
        RandomTaskSelectWrapper,
    )

    env_cls = ALL_V3_ENVIRONMENTS[task]
    task_kwargs = {k: v for k, v in ML1_ARGS_KWARGS[task]["kwargs"].items() if k != "task_id"}
    # metaworld._init_each_env's construction.
    args = {"reward_function_version": "v2", "render_mode": None, "camera_name": None,
            "camera_id": None, "width": 480, "height": 480}
    env = env_cls(**{**args, **render_kwargs})

    # metaworld._make_tasks' first draw: a reset from the reset space with NumPy's global
    # generator seeded 0, whose state is put back afterwards.
    global_state = np.random.get_state()
    np.random.seed(0)
    try:
        env._freeze_rand_vec = False
        env._set_task_called = True
        env._set_task_inner(**task_kwargs)
        env.reset()
        rand_vec = env._last_rand_vec
    finally:
        np.random.set_state(global_state)
    variation = Task(env_name=task, data=pickle.dumps(
        dict(task_kwargs, rand_vec=rand_vec, env_cls=env_cls, partially_observable=False)))

    env.seed(0)
    env = gym.wrappers.TimeLimit(env, env.max_path_length)
    env = AutoTerminateOnSuccessWrapper(env)
    env.toggle_terminate_on_success(False)
    env = gym.wrappers.RecordEpisodeStatistics(env)
    env = RandomTaskSelectWrapper(env, [variation] * metaworld._N_GOALS)
    env = CheckpointWrapper(env, f"{env_cls}_None")
    env.action_space.seed(0)
    # What gymnasium.make adds around it.
    env = gym.wrappers.OrderEnforcing(env)
    if max_steps is not None:
        env = gym.wrappers.TimeLimit(env, max_steps)
    return env


class _GeomNames:
    """The name lookup MetaWorld's older tasks call (mujoco-py's `model.geom_name2id`), on the
    mujoco bindings, which no longer have it."""

    def __init__(self, model):
        self._model = model

    def geom_name2id(self, name: str) -> int:
        import mujoco

        geom = mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_GEOM, name)
        if geom < 0:
            raise KeyError(name)
        return geom


def main_object_geom(env) -> int | None:
    """The geom id of the object a task's grasp is about, as the task itself defines it
    (`_get_id_main_object`); None where that definition names a geom the model lacks."""
    from types import SimpleNamespace

    # Called unbound on a stand-in whose model answers the old lookup: the task's own choice of
    # object, without MetaWorld's broken call.
    stand_in = SimpleNamespace(model=_GeomNames(env.model), data=env.data)
    try:
        geom = type(env)._get_id_main_object(stand_in)
    except (KeyError, AttributeError):
        return None
    return None if geom is None else int(geom)


def spread_rendering(index: int) -> None:
    """Render on CUDA device `index` modulo the GPUs this process sees: EGL contexts on one GPU
    take turns, so processes rendering in parallel are spread over every GPU. Takes effect in a
    process that has not rendered yet (MuJoCo opens its EGL display once); an explicit
    MUJOCO_EGL_DEVICE_ID is kept.

    MuJoCo picks EGL device MUJOCO_EGL_DEVICE_ID, or the first it can open; EGL numbers the GPUs
    its own way and ignores CUDA_VISIBLE_DEVICES. So a run pinned to the second GPU with
    CUDA_VISIBLE_DEVICES=1 would render on the first, beside whatever runs there. The EGL device
    is the one NVIDIA's driver names as that CUDA device; where it names none, the CUDA index is
    used as the EGL index, as before."""
    if os.environ.get("MUJOCO_GL") != "egl" or "MUJOCO_EGL_DEVICE_ID" in os.environ:
        return
    import torch

    gpus = torch.cuda.device_count()
    if gpus == 0:
        return
    cuda = index % gpus
    egl = egl_device_for_cuda(_egl_cuda_devices(), cuda)
    if egl is not None:
        os.environ["MUJOCO_EGL_DEVICE_ID"] = str(egl)
    elif gpus > 1:
        os.environ["MUJOCO_EGL_DEVICE_ID"] = str(cuda)


def egl_device_for_cuda(cuda_of_egl: list[int | None], cuda: int) -> int | None:
    """The EGL device index whose CUDA device is `cuda`, given each EGL device's CUDA device."""
    matches = [i for i, c in enumerate(cuda_of_egl) if c == cuda]
    return matches[0] if len(matches) == 1 else None


EGL_CUDA_DEVICE_NV = 0x323A  # the EGL_NV_device_cuda extension's attribute


def _egl_cuda_devices() -> list[int | None]:
    """Each EGL device's CUDA device as NVIDIA's driver reports it (EGL_NV_device_cuda), None
    where it reports none; empty where EGL cannot be asked at all."""
    import ctypes

    try:
        from mujoco.egl import egl_ext as EGL

        query = ctypes.CFUNCTYPE(EGL.EGLBoolean, EGL.EGLDeviceEXT, EGL.EGLint, ctypes.POINTER(ctypes.c_ssize_t))(
            EGL.eglGetProcAddress("eglQueryDeviceAttribEXT"))
        devices = EGL.eglQueryDevicesEXT(16)
    except Exception:  # noqa: BLE001 - no EGL, no extension: the caller falls back to CUDA order
        return []
    found = []
    for device in devices:
        value = ctypes.c_ssize_t(-1)
        ok = query(device, EGL_CUDA_DEVICE_NV, ctypes.byref(value)) == EGL.EGL_TRUE
        EGL.eglGetError()  # a device that is not NVIDIA's leaves an error MuJoCo's checks would read
        found.append(int(value.value) if ok and value.value >= 0 else None)
    return found


def _check_rendering() -> None:
    backend = os.environ.get("MUJOCO_GL")
    if backend is None:
        # osmesa works on any CPU machine; on a GPU machine MUJOCO_GL=egl renders far faster.
        os.environ["MUJOCO_GL"] = backend = "osmesa"
    if backend == "osmesa":
        os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
        import ctypes.util

        if ctypes.util.find_library("OSMesa") is None:
            raise VlascopeError(
                "rendering with MUJOCO_GL=osmesa needs the system library libOSMesa: "
                "install it with `sudo apt-get install libosmesa6` (or use MUJOCO_GL=egl on a GPU)"
            )
    elif backend == "egl":
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
