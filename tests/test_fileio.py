import json
import os
import stat

import pytest

from vlascope.fileio import atomic_dir, atomic_path, write_json


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_and_folders_get_ordinary_permissions(tmp_path):
    # mkstemp's 0600 would leave a checkpoint or the shared embedding cache unreadable to
    # anyone but its writer.
    write_json(tmp_path / "a.json", {"x": 1})
    with atomic_dir(tmp_path / "ckpt") as d:
        (d / "w.bin").write_bytes(b"0")
    (tmp_path / "plain.json").write_text("{}")  # what an ordinary open() and mkdir() give
    (tmp_path / "plain").mkdir()
    assert mode(tmp_path / "a.json") == mode(tmp_path / "plain.json")
    assert mode(tmp_path / "ckpt") == mode(tmp_path / "plain")


def test_a_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "a.json"
    write_json(target, {"x": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
