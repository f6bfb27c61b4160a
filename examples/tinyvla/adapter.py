"""The TinyVLA example behind vlascope's policy interface: what a user writes so that
`vlascope doctor --adapter examples.tinyvla.adapter:load --checkpoint tinyvla.pt` can examine it.

Each method maps the doctor's batch (vlascope's keys, raw units, an observation window of one
frame) onto the model's own calls; the model itself is untouched.
"""

from __future__ import annotations

import numpy as np
import torch

from examples.tinyvla.model import TinyVLA
from examples.tinyvla.train import load as load_model
from examples.tinyvla.train import make_optimizer, statistics
from vlascope.errors import VlascopeError
from vlascope.policies.interface import ActionPolicy, FeatureNormalization, PolicySpec


class TinyVLAPolicy(ActionPolicy):
    origin = "adapter (examples.tinyvla)"

    def __init__(self, model: TinyVLA):
        self.model, c = model, model.config
        self.name = "tinyvla"
        shapes = {c.image_key: (c.image_size, c.image_size, 3), "robot_state": (c.state_dim,)}
        if c.use_goal:
            shapes["goal"] = (c.goal_dim,)
        self.spec = PolicySpec(shapes, c.action_dim, n_obs_steps=1, horizon=c.horizon,
                               n_action_steps=c.horizon)

    def _inputs(self, obs):
        c = self.model.config
        goal = obs["goal"][:, -1].float() if c.use_goal else None
        return obs[c.image_key][:, -1], obs["robot_state"][:, -1].float(), goal

    def predict_chunk(self, obs, seed=0, task_index=None):
        generator = torch.Generator(device=self.device).manual_seed(seed)
        return self.model.sample(*self._inputs(obs), generator=generator)

    def module(self):
        return self.model

    def loss(self, batch):
        return self.model.loss(*self._inputs(batch["obs"]), batch["action"].float())

    def optimizer(self, parameters, steps):
        return make_optimizer(self.model, steps)  # the training script's own recipe

    def zero_output_loss(self, batch):
        x0 = self.model.normalise("action", batch["action"].float())
        return float((x0 ** 2).mean())  # the net predicts the clean chunk

    def normalization(self):
        out = []
        for name, key in (("state", "robot_state"), ("goal", "goal"), ("action", "action")):
            if key in self.spec.obs_keys or key == "action":
                stats = {s: getattr(self.model, f"{name}_{s}").cpu().numpy().astype(np.float64)
                         for s in ("mean", "std")}
                out.append(FeatureNormalization(key, "meanstd", stats))
        return out

    def fresh(self, episodes):
        c = self.model.config
        demos = [{"state": e.obs["robot_state"], "goal": e.obs["goal"], "actions": e.actions} for e in episodes]
        stats = {k: torch.as_tensor(v) for k, v in statistics(demos).items()}
        return TinyVLAPolicy(TinyVLA(c, stats).to(self.device))


def load(checkpoint: str | None = None, device: str = "cpu") -> TinyVLAPolicy:
    if checkpoint is None:
        raise VlascopeError("the TinyVLA adapter needs --checkpoint (a file written by examples.tinyvla.train)")
    return TinyVLAPolicy(load_model(checkpoint, device))
