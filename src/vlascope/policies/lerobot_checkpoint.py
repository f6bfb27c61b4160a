"""A LeRobot `pretrained_model` folder behind vlascope's policy interface, loaded by LeRobot.

What is diagnosed is what `lerobot-eval` or a robot runs: the policy class from LeRobot's
registry (`get_policy_class`), its config from the folder, and the pre/post-processor pipelines
saved beside the weights (`make_pre_post_processors(..., pretrained_path=folder)`), whose
normaliser steps carry the statistics. Nothing here re-implements a LeRobot model.

A policy whose preprocessor tokenises a task text (SmolVLA, pi0, pi0.5) gets each row's text
under its step's `task_key`, as lerobot-eval passes an environment's task description. Its
`task_index` numbers the tasks of the dataset it trained on (that dataset's meta/tasks.parquet),
so the evaluator and the doctor find a task by its instruction, as for any multi-task policy.

Needs the `lerobot` package (`pip install 'vlascope[lerobot]'`, Python >= 3.12).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from vlascope.data.lerobot import task_texts, vlascope_key
from vlascope.errors import VlascopeError
from vlascope.policies.interface import ActionPolicy, FeatureNormalization, NotProvided, PolicySpec

MODES = {"MEAN_STD": "meanstd", "MIN_MAX": "minmax", "IDENTITY": "identity",
         "QUANTILES": "quantiles", "QUANTILE10": "quantile10"}


def is_lerobot_checkpoint(folder: str | Path) -> bool:
    """A LeRobot policy folder: a config.json naming its `type`, and saved processors."""
    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(config, dict) and "type" in config and "format_version" not in config


def _lerobot():
    try:
        from lerobot.configs.policies import PreTrainedConfig
        from lerobot.policies.factory import get_policy_class, make_pre_post_processors
    except ImportError as exc:
        raise VlascopeError(f"this is a LeRobot checkpoint and the lerobot package is not importable "
                            f"({exc}): pip install 'vlascope[lerobot]' (Python >= 3.12)") from None
    return PreTrainedConfig, get_policy_class, make_pre_post_processors


def _mode(mode) -> str:
    name = getattr(mode, "value", str(mode))
    return MODES.get(name, name.lower())


def _by_feature(flat: dict) -> dict[str, dict]:
    """A normaliser step's state_dict ("feature.stat" -> tensor) grouped by feature."""
    out: dict[str, dict] = {}
    for name, value in flat.items():
        feature, stat = name.rsplit(".", 1)
        out.setdefault(feature, {})[stat] = value
    return out


def _numpy(stats: dict) -> dict[str, np.ndarray]:
    return {k: np.asarray(v.cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64).reshape(-1)
            for k, v in stats.items() if not isinstance(v, (str, dict))}


class LeRobotPolicy(ActionPolicy):
    origin = "lerobot"

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu", policy=None,
                 processors=None):
        PreTrainedConfig, get_policy_class, make_pre_post_processors = _lerobot()
        self.folder = Path(folder)
        if policy is None:
            try:
                config = PreTrainedConfig.from_pretrained(str(self.folder))
            except Exception as exc:  # draccus/json errors name the field; keep one line
                raise VlascopeError(f"{self.folder / 'config.json'}: not a LeRobot policy config "
                                    f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
            config.device = str(device)
            try:
                policy = get_policy_class(config.type).from_pretrained(str(self.folder), config=config)
                processors = make_pre_post_processors(config, pretrained_path=str(self.folder))
            except OSError as exc:  # e.g. a backbone's Hub files neither cached nor reachable
                raise VlascopeError(f"{self.folder}: LeRobot could not build its {config.type} "
                                    f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
        self.policy = policy.to(device)
        self.policy.eval()
        self.config = policy.config
        self.pre, self.post = processors
        self.name = f"lerobot {self.config.type}"
        self.features = {vlascope_key(name): name for name in self.config.input_features}
        self.task_key = self._task_key()
        self.task_texts = self._training_tasks() if self.task_key else []
        shapes = {}
        for name, feature in self.config.input_features.items():
            shape = tuple(feature.shape)
            shapes[vlascope_key(name)] = (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape
        actions = list(self.config.action_delta_indices)
        n_obs = int(getattr(self.config, "n_obs_steps", 1))
        action_dim = int(self.config.output_features["action"].shape[0])
        horizon = self._chunk_length(shapes, n_obs)
        self.spec = PolicySpec(shapes, action_dim, n_obs, horizon,
                               int(getattr(self.config, "n_action_steps", horizon)),
                               (actions[0], len(actions)))

    # --- the task text a language policy reads ----------------------------------------------
    def _task_key(self) -> str | None:
        """Where the preprocessor reads a task text from (its tokenizer step's `task_key`); None
        for a policy that reads none."""
        from lerobot.processor.tokenizer_processor import TokenizerProcessorStep

        step = next((s for s in self.pre.steps if isinstance(s, TokenizerProcessorStep)), None)
        return None if step is None else step.task_key

    def _train_config(self) -> dict:
        path = self.folder / "train_config.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _training_tasks(self) -> list[str]:
        """The task texts of the dataset the policy trained on, in its task_index order: at
        train_config.json's dataset root, else where LeRobot caches that repo_id."""
        from lerobot.utils.constants import HF_LEROBOT_HOME

        dataset = self._train_config().get("dataset") or {}
        roots = [Path(r) for r in (dataset.get("root"),) if r]
        if dataset.get("repo_id"):
            roots.append(Path(HF_LEROBOT_HOME) / dataset["repo_id"])
        for root in roots:
            if (root / "meta/tasks.parquet").exists():
                return task_texts(root)
        tried = " or ".join(str(r / "meta/tasks.parquet") for r in roots) or "no dataset named"
        raise VlascopeError(f"{self.folder / 'train_config.json'}: this LeRobot {self.config.type} reads its "
                            f"task as text, and the task texts of the dataset it trained on are not here "
                            f"({tried}); put that dataset there to run it")

    def _texts(self, task_index: torch.Tensor | None, rows: int) -> list[str]:
        index = [0] * rows if task_index is None else [int(i) for i in task_index.reshape(-1)]
        if any(not 0 <= i < len(self.task_texts) for i in index):
            raise VlascopeError(f"{self.folder}: task index {max(index)} asked of a policy trained on "
                                f"{len(self.task_texts)} tasks {self.task_texts}")
        return [self.task_texts[i] for i in index]

    # --- converting vlascope windows to LeRobot batches ------------------------------------
    def _batch(self, obs: dict[str, torch.Tensor], task_index: torch.Tensor | None = None) -> dict:
        n_obs = int(getattr(self.config, "n_obs_steps", 1))
        batch = {}
        for key, name in self.features.items():
            x = obs[key]
            if x.dtype == torch.uint8:  # (B, To, H, W, 3) -> (B, To, 3, H, W) in [0, 1]
                x = x.permute(0, 1, 4, 2, 3).float() / 255
            else:
                x = x.float()
            batch[name] = x[:, -1] if n_obs == 1 else x
        if self.task_key is not None:
            batch[self.task_key] = self._texts(task_index, len(next(iter(batch.values()))))
        return batch

    def _chunk_length(self, shapes: dict, n_obs: int) -> int:
        """How many actions predict_action_chunk returns (ACT: chunk_size; diffusion:
        n_action_steps), asked of the policy itself on a zero observation."""
        obs = {k: torch.zeros((1, n_obs, *shape), dtype=torch.uint8 if len(shape) == 3 else torch.float32)
               for k, shape in shapes.items()}
        return int(self._predict_normalised(obs).shape[1])

    @torch.no_grad()
    def _predict_normalised(self, obs, task_index=None) -> torch.Tensor:
        self.policy.eval()
        self.policy.reset()  # no observation queue from an earlier call
        return self.policy.predict_action_chunk(self.pre(self._batch(obs, task_index)))

    # --- the interface ----------------------------------------------------------------------
    @torch.no_grad()
    def predict_chunk(self, obs, seed=0, task_index=None):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            chunk = self._predict_normalised(obs, task_index)
        return self.post(chunk).float().cpu()

    def module(self):
        return self.policy

    def loss(self, batch):
        lerobot_batch = self._batch(batch["obs"], batch.get("task_index"))
        lerobot_batch["action"] = batch["action"].float()
        lerobot_batch["action_is_pad"] = batch["action_is_pad"]
        loss, _ = self.policy.forward(self.pre(lerobot_batch))
        return loss

    def optimizer(self, parameters, steps):
        optimizer = self.config.get_optimizer_preset().build(parameters)
        scheduler = self.config.get_scheduler_preset()
        return optimizer, scheduler.build(optimizer, steps) if scheduler is not None else None

    def zero_output_loss(self, batch):
        target = self.pre({"action": batch["action"].float(),
                           **self._batch(batch["obs"], batch.get("task_index"))})["action"].float()
        keep = ~batch["action_is_pad"].to(target.device)
        if self.config.type == "act" and not self.config.use_vae:
            return float(target.abs()[keep].mean())  # L1 of the chunk
        if self.config.type == "diffusion":
            return 1.0 if self.config.prediction_type == "epsilon" else float((target ** 2)[keep].mean())
        # ACT with its VAE adds kl_weight x KL, whose starting value depends on the encoder's init.
        raise NotProvided(f"what a zero output scores is not known for LeRobot's {self.config.type}"
                          + (" with its VAE (the KL term)" if self.config.type == "act" else ""))

    def backbone_features(self, obs, task_index=None):
        """SmolVLA's VLM outputs (last layer, after its norm) at the image and instruction tokens,
        averaged; the state token, which those tokens do not attend to, is left out. Frozen when
        none of the VLM's weights train (`train_expert_only`, SmolVLA's default)."""
        if self.config.type != "smolvla":
            raise NotProvided(f"the vision-language features of LeRobot's {self.config.type} are not read here")
        from lerobot.policies.smolvla.modeling_smolvla import make_att_2d_masks
        from lerobot.utils.constants import OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS

        policy, model = self.policy, self.policy.model
        with torch.no_grad():
            batch = policy._prepare_batch(self.pre(self._batch(obs, task_index)))
            images, image_masks = policy.prepare_images(batch)
            embs, pad, att = model.embed_prefix(images, image_masks, batch[OBS_LANGUAGE_TOKENS],
                                                batch[OBS_LANGUAGE_ATTENTION_MASK], state=policy.prepare_state(batch))
            (out, _), _ = model.vlm_with_expert.forward(
                attention_mask=make_att_2d_masks(pad, att), position_ids=torch.cumsum(pad, dim=1) - 1,
                past_key_values=None, inputs_embeds=[embs, None], use_cache=True)
        keep = (pad & ~att).unsqueeze(-1).float()  # att marks the state token
        pooled = (out.float() * keep).sum(1) / keep.sum(1).clamp(min=1)
        frozen = not any(p.requires_grad for p in model.vlm_with_expert.vlm.parameters())
        return pooled, frozen

    def _steps(self):
        from lerobot.processor.normalize_processor import NormalizerProcessorStep, UnnormalizerProcessorStep

        normaliser = next((s for s in self.pre.steps if isinstance(s, NormalizerProcessorStep)), None)
        unnormaliser = next((s for s in self.post.steps if isinstance(s, UnnormalizerProcessorStep)), None)
        return normaliser, unnormaliser

    def normalization(self):
        normaliser, unnormaliser = self._steps()
        # What each step applies: its state_dict, "feature.stat" -> tensor.
        inputs_in_use = _by_feature(normaliser.state_dict()) if normaliser is not None else {}
        outputs_in_use = _by_feature(unnormaliser.state_dict()) if unnormaliser is not None else {}
        trained = self.config.normalization_mapping
        out = []
        features = {**self.config.input_features, "action": self.config.output_features["action"]}
        for name, feature in features.items():
            kind = getattr(feature.type, "value", str(feature.type))
            step = unnormaliser if name == "action" else normaliser
            stats = (outputs_in_use if name == "action" else inputs_in_use).get(name)
            source = stats
            if source is None:  # e.g. the action without an unnormaliser: the normaliser's copy
                source = inputs_in_use.get(name)
            if source is None or kind == "VISUAL":
                continue
            trained_mode = _mode(trained.get(kind, "IDENTITY"))  # a type not in the map is left raw
            mode = step.norm_map.get(feature.type) if step is not None else None
            deployed = _mode(mode) if mode is not None else "identity"
            # Statistics the training normalised with but the deployed step lacks: not applied.
            applied = trained_mode == "identity" or (step is not None and stats is not None)
            key = "action" if name == "action" else vlascope_key(name)
            out.append(FeatureNormalization(key, deployed if applied else trained_mode, _numpy(source),
                                            applied, trained_mode))
        return out

    def fresh(self, episodes):
        """The same LeRobot policy class and config, randomly initialised, with processors whose
        statistics come from `episodes` (as lerobot-train computes them from its dataset)."""
        _, get_policy_class, make_pre_post_processors = _lerobot()
        stats = {}
        for key, name in {**self.features, "action": "action"}.items():
            values = np.concatenate([e.actions if key == "action" else e.obs[key] for e in episodes])
            if values.dtype == np.uint8:  # per channel, in [0, 1], shaped (3, 1, 1) like LeRobot's
                pixels = values.reshape(-1, 3).astype(np.float64) / 255
                stats[name] = {s: f(pixels, 0).reshape(3, 1, 1) for s, f in
                               (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max))}
            else:
                stats[name] = {"mean": values.mean(0), "std": values.std(0), "min": values.min(0),
                               "max": values.max(0)}
        stats = {k: {s: torch.as_tensor(v, dtype=torch.float32) for s, v in d.items()} for k, d in stats.items()}
        policy = get_policy_class(self.config.type)(self.config)
        processors = make_pre_post_processors(self.config, dataset_stats=stats)
        return LeRobotPolicy(self.folder, self.device, policy, processors)

    def run_checkpoints(self):
        """lerobot-train writes <output_dir>/checkpoints/<step>/pretrained_model."""
        root = self.folder.parent.parent
        if self.folder.name != "pretrained_model" or root.name != "checkpoints":
            raise NotProvided("the folder is not inside a lerobot-train run (checkpoints/<step>/pretrained_model)")
        device = self.device
        return [(int(p.parent.name), lambda p=p: LeRobotPolicy(p, device))
                for p in sorted(root.glob("*/pretrained_model")) if p.parent.name.isdigit()]

    def training_info(self):
        config = self._train_config()
        # Trained on one task, the policy gets that task's text whatever it is evaluated on (as a
        # vlascope policy of one task names none); on several, each is found by its text.
        tasks = {"task_names": list(self.task_texts)} if len(self.task_texts) > 1 else {}
        if not config:
            return tasks
        return {"episodes": (config.get("dataset") or {}).get("episodes"), "steps": config.get("steps"),
                "dataset": (config.get("dataset") or {}).get("root"), **tasks}

