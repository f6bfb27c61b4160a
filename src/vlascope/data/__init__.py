"""Datasets: the episode schema, HDF5 storage, training windows and normalisation statistics."""

from vlascope.data.dataset import WindowDataset
from vlascope.data.episodes import Episode, EpisodeDataset, TaskSet
from vlascope.data.hdf5 import write_dataset
from vlascope.data.read import read_dataset
from vlascope.data.normalizer import Normalizer, compute_stats

__all__ = [
    "Episode",
    "EpisodeDataset",
    "Normalizer",
    "TaskSet",
    "WindowDataset",
    "compute_stats",
    "read_dataset",
    "write_dataset",
]
