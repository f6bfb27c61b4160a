"""The doctor end to end, as a user runs it: files written, every check listed, exit code 0."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from vlascope.cli import main
from vlascope.doctor import CHECKS
from vlascope.doctor.run import check_id

ALL_IDS = {check_id(c) for c in CHECKS} | {"mode-collapse"}


def test_doctor_quick_on_a_checkpoint_writes_a_complete_report(reach_dataset, trained_run, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["doctor", "--dataset", reach_dataset, "--checkpoint", str(trained_run.last_checkpoint),
                 "--quick", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "doctor:" in printed and "report.html" in printed
    findings = json.loads((out / "findings.json").read_text())
    assert {f["id"] for f in findings} == ALL_IDS
    for f in findings:
        assert set(f) >= {"id", "severity", "title", "evidence", "fix"}
        assert f["severity"] in ("error", "warning", "info", "ok")
        for plot in f["plots"]:
            assert (out / plot).stat().st_size > 1000
    # Ranked: nothing less severe comes before something more severe among checks that ran.
    ran = [f for f in findings if "skipped" not in f["evidence"]]
    order = ["error", "warning", "info", "ok"]
    assert [order.index(f["severity"]) for f in ran] == sorted(order.index(f["severity"]) for f in ran)
    # A 5-step policy has not learned its demos: the open-loop check says so.
    assert any(f["id"] == "open-loop" and f["severity"] == "warning" for f in findings)
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "src=\"plots/" not in html  # self-contained
    assert "# vlascope doctor report" in (out / "report.md").read_text()
    stats = json.loads((out / "statistics.json").read_text())
    assert stats["dataset"]["demos"] == 2 and "normaliser" in stats
    arrays = np.load(out / "predictions.npz")
    assert arrays["train_truth"].shape == arrays["train_predicted"].shape


def test_doctor_reports_bad_data_instead_of_crashing(reach_dataset, tmp_path):
    import h5py

    path = tmp_path / "nan.hdf5"
    shutil.copy(reach_dataset, path)
    with h5py.File(path, "r+") as f:
        f["data/demo_0/actions"][4, 2] = np.nan
    assert main(["doctor", "--dataset", str(path), "--quick", "--out", str(tmp_path / "r")]) == 0
    findings = json.loads((tmp_path / "r" / "findings.json").read_text())
    nan = next(f for f in findings if f["id"] == "nan-in-data")
    assert nan["severity"] == "error" and nan["evidence"]["locations"][0]["step"] == 4
    assert not any("check itself failed" in f["title"] for f in findings)


def test_doctor_bad_input_is_one_line(tmp_path, capsys):
    assert main(["doctor", "--dataset", str(tmp_path / "missing.hdf5"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing.hdf5" in err


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(reach_dataset, tmp_path):
    out = tmp_path / "r"
    assert main(["doctor", "--dataset", reach_dataset, "--quick", "--out", str(out)]) == 0
    script = Path(__file__).parents[2] / "scripts" / "screenshot_report.sh"
    shot = subprocess.run([str(script), str(out / "report.html"), "1000", "1500"],
                          capture_output=True, text=True, check=True).stdout.strip()
    from PIL import Image  # matplotlib depends on pillow

    image = np.asarray(Image.open(shot).convert("L"))
    assert image.shape == (1500, 1000)
    assert image.std() > 10  # a page with text and plots, not a blank one
