import numpy as np
import torch

from vlascope.data import Episode, WindowDataset


def _episodes():
    return [Episode(actions=np.arange(t, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32),
                    obs={"s": np.arange(t, dtype=np.float32)[:, None] + 100 * e})
            for e, t in enumerate([5, 3])]


def test_windows_pad_history_at_start_and_chunk_at_end():
    ds = WindowDataset(_episodes(), ["s"], n_obs_steps=3, horizon=4)
    assert len(ds) == 8
    first = ds[0]
    assert first["obs"]["s"][:, 0].tolist() == [0, 0, 0]  # history repeats the first frame
    assert first["action"][:, 0].tolist() == [0, 1, 2, 3]
    last = ds[4]
    assert last["obs"]["s"][:, 0].tolist() == [2, 3, 4]
    assert last["action"][:, 0].tolist() == [4, 4, 4, 4]  # chunk repeats the last action
    second_episode = ds[5]
    assert second_episode["obs"]["s"][:, 0].tolist() == [100, 100, 100]  # never crosses episodes


def test_all_windows_matches_item_access():
    ds = WindowDataset(_episodes(), ["s"], n_obs_steps=2, horizon=3, task_indices=[0, 1])
    stacked = ds.all_windows()
    for i in range(len(ds)):
        item = ds[i]
        assert torch.equal(stacked["obs"]["s"][i], item["obs"]["s"])
        assert torch.equal(stacked["action"][i], item["action"])
        assert stacked["task_index"][i] == item["task_index"]
    assert stacked["task_index"].tolist() == [0] * 5 + [1] * 3
