"""The training loop, its config, and checkpoints."""

from vlascope.train.loop import TrainConfig, TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
