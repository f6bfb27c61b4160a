"""LeRobot v3.0 export and import: the layout against the v3.0 specification (paths, info.json
features, episode index ranges, video segments) and the round trip through our reader. The
round trip through the real `lerobot` package runs in the LeRobot tier
(tests/lerobot/test_lerobot_round_trip.py, `make test-lerobot`)."""

import json

import numpy as np
import pytest

from tests.conftest import needs_rendering, two_task_lerobot_folder
from vlascope.data import read_dataset
from vlascope.data.episodes import by_task
from vlascope.data.lerobot import task_texts, write_lerobot

pytest.importorskip("pyarrow")


def test_state_dataset_round_trip(reach_dataset, tmp_path):
    import pyarrow.parquet as pq

    ours = read_dataset(reach_dataset)
    folder = write_lerobot(tmp_path / "reach_lerobot", ours)
    info = json.loads((folder / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == len(ours.episodes)
    assert info["features"]["observation.state"]["shape"] == [4]
    assert info["features"]["action"]["shape"] == [4]
    rows = pq.read_table(folder / "data/chunk-000/file-000.parquet").to_pydict()
    assert rows["index"] == list(range(ours.num_frames))
    episodes = pq.read_table(folder / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["dataset_to_index"] - e["dataset_from_index"] for e in episodes] == [len(e) for e in ours.episodes]
    assert episodes[0]["tasks"] == [ours.attrs["instruction"]]
    stats = json.loads((folder / "meta/stats.json").read_text())
    np.testing.assert_allclose(stats["action"]["mean"], np.concatenate([e.actions for e in ours.episodes]).mean(0), rtol=1e-5)

    back = read_dataset(folder)
    assert back.task == "reach-v3" and back.attrs["instruction"] == ours.attrs["instruction"]
    np.testing.assert_allclose(back.instruction_embedding, ours.instruction_embedding)
    for a, b in zip(ours.episodes, back.episodes):
        np.testing.assert_array_equal(a.actions, b.actions)
        for k in ("robot_state", "object_state", "goal"):
            np.testing.assert_array_equal(a.obs[k], b.obs[k])
        # The simulator state each demo started from: the doctor's train-eval-gap replays it.
        np.testing.assert_allclose(b.attrs["initial_state"], a.attrs["initial_state"])


@needs_rendering
def test_image_dataset_round_trip_through_video(pick_place_images, tmp_path):
    ours = read_dataset(pick_place_images)
    folder = write_lerobot(tmp_path / "pp", ours)
    info = json.loads((folder / "meta/info.json").read_text())
    assert info["features"]["observation.images.corner2"]["dtype"] == "video"
    assert (folder / "videos/observation.images.corner2/chunk-000/file-000.mp4").exists()
    back = read_dataset(folder)
    for a, b in zip(ours.episodes, back.episodes):
        assert b.obs["corner2_image"].shape == a.obs["corner2_image"].shape
        x, y = a.obs["corner2_image"].astype(int), b.obs["corner2_image"].astype(int)
        # H.264 in yuv420p is lossy (chroma at half resolution hurts 32-px frames most) ...
        assert np.abs(x - y).mean() < 4.0
        # ... but every frame lands on its own row: one frame off would be further away.
        assert np.abs(x - y).mean() < np.abs(x[1:] - y[:-1]).mean()


def test_a_folder_that_is_not_lerobot(tmp_path):
    from vlascope.errors import VlascopeError

    with pytest.raises(VlascopeError, match="not a LeRobot dataset"):
        read_dataset(tmp_path)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta/info.json").write_text('{"codebase_version": "v2.1", "features": {}}')
    with pytest.raises(VlascopeError, match="codebase_version 'v2.1'"):
        read_dataset(tmp_path)


def test_convert_both_ways_from_the_command_line(reach_dataset, tmp_path, capsys):
    from vlascope.cli import main

    assert main(["data", "convert", reach_dataset, str(tmp_path / "lr")]) == 0
    assert main(["data", "convert", str(tmp_path / "lr"), str(tmp_path / "back.hdf5")]) == 0
    assert "as HDF5" in capsys.readouterr().out
    a, b = read_dataset(reach_dataset), read_dataset(tmp_path / "back.hdf5")
    assert [len(e) for e in a.episodes] == [len(e) for e in b.episodes]
    np.testing.assert_array_equal(a.episodes[1].obs["goal"], b.episodes[1].obs["goal"])
    assert main(["data", "inspect", str(tmp_path / "lr")]) == 0


def test_tasks_parquet_keeps_the_task_text_as_its_pandas_index(reach_dataset, tmp_path):
    # LeRobot reads meta/tasks.parquet with pandas and takes the task text from the index;
    # a plain "task" column came back as task 0 when the real lerobot loaded our export.
    import pyarrow.parquet as pq

    folder = write_lerobot(tmp_path / "lr", read_dataset(reach_dataset))
    table = pq.read_table(folder / "meta/tasks.parquet")
    assert json.loads(table.schema.metadata[b"pandas"])["index_columns"] == ["__index_level_0__"]
    assert table.to_pydict()["__index_level_0__"] == ["Reach a goal position"]


def test_a_folder_of_several_tasks_is_read_for_one_of_them(reach_dataset, button_dataset, tmp_path):
    import pyarrow.parquet as pq

    from vlascope.errors import VlascopeError

    folder = two_task_lerobot_folder(reach_dataset, button_dataset, tmp_path / "two")
    texts = ["Reach a goal position", "Press a button"]
    assert pq.read_table(folder / "meta/tasks.parquet").to_pydict()["__index_level_0__"] == texts
    assert json.loads((folder / "meta/info.json").read_text())["total_tasks"] == 2
    assert task_texts(folder) == texts  # what a language policy trained on the folder numbers
    reach, button = read_dataset(reach_dataset), read_dataset(button_dataset)

    whole = read_dataset(folder)
    assert len(whole.episodes) == len(reach.episodes) + len(button.episodes)
    assert whole.attrs["folder_tasks"] == texts

    # Read for one task, by name with the text it is recorded under: that task's episodes alone,
    # and the dataset named after the task (a checkpoint of several tasks numbers it by name).
    one = read_dataset(folder, task="button-press-v3", instruction="Press a button")
    assert one.task == "button-press-v3" and one.attrs["instruction"] == "Press a button"
    assert len(one.episodes) == len(button.episodes)
    np.testing.assert_array_equal(one.episodes[0].actions, button.episodes[0].actions)
    assert not any("stats" in p for p in one.problems)  # the folder's statistics cover both tasks

    # For training, the whole folder as one dataset per task, named by its text; a dataset of
    # one task as itself.
    parts = by_task(whole)
    assert [(d.task, d.attrs["instruction"], len(d.episodes)) for d in parts] == \
        [(texts[0], texts[0], len(reach.episodes)), (texts[1], texts[1], len(button.episodes))]
    np.testing.assert_array_equal(parts[1].episodes[0].actions, button.episodes[0].actions)
    assert by_task(one) == [one] and by_task(reach) == [reach]

    with pytest.raises(VlascopeError, match=r"meta/episodes: no episode of task 'door-open-v3' "
                                            r"\(recorded as 'Open a door'\); its 2 tasks are "
                                            r"'Reach a goal position', 'Press a button'"):
        read_dataset(folder, task="door-open-v3", instruction="Open a door")


def test_task_texts_follow_task_index_and_name_a_table_without_them(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vlascope.errors import VlascopeError

    (tmp_path / "meta").mkdir()
    path = tmp_path / "meta/tasks.parquet"
    pq.write_table(pa.table({"task_index": [1, 0], "task": ["Push the puck to a goal", "Reach a goal position"]}), path)
    assert task_texts(tmp_path) == ["Reach a goal position", "Push the puck to a goal"]
    pq.write_table(pa.table({"task_index": [0], "text": ["Reach a goal position"]}), path)
    with pytest.raises(VlascopeError, match=r"meta/tasks.parquet: expected the columns task_index and the "
                                            r"task text \(`task` or the pandas index\), got \['task_index', 'text'\]"):
        task_texts(tmp_path)
