"""vlascope's data checks beside the data doctors on the package index, on the same files.

Twenty real pick-place-v3 expert demos (state only), each planted fault in its own copy, every
copy written as a LeRobot v3.0 folder; each tool reads the same folders:

- `lerobot-doctor check --json` (lerobot-doctor 0.2.0);
- `lelint check --no-video --json` (lerobot-lint 0.1.1);
- `vlascope doctor --quick --fail-on warning` (this repository).

A peer counts as finding a fault when its report on the faulty copy has a warning or failure
that its report on the healthy copy does not (messages compared with their numbers masked,
episode numbers kept), and as naming the culprit when one of those mentions the episode.
vlascope must report the fault under the expected check id and name the episode. Then the false
alarms: each tool on healthy data of 12 MetaWorld tasks (20 demos each). Writes
benchmarks/results/data_doctors.json. Runs in the LeRobot environment, where the peers install
(`make test-lerobot` builds it; then `pip install lerobot-doctor==0.2.0 lerobot-lint==0.1.1`):

    .venv-lerobot/bin/python benchmarks/data_doctors.py [--out outputs/data_doctors]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._provenance import RESULTS, provenance  # noqa: E402
from tests.doctor import faults  # noqa: E402
from vlascope.cli import main as vlascope_main  # noqa: E402
from vlascope.data import read_dataset  # noqa: E402
from vlascope.data.lerobot import write_lerobot  # noqa: E402
from vlascope.envs.collect import collect_demos  # noqa: E402

TASK = "pick-place-v3"
DEMOS = 20
HEALTHY_TASKS = ["reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3",
                 "drawer-close-v3", "button-press-topdown-v3", "plate-slide-v3", "coffee-button-v3",
                 "window-open-v3", "window-close-v3", "peg-insert-side-v3"]
BIN = Path(sys.executable).parent


# --- faults: each edits a deep copy of the healthy episodes (or the written folder) ---------
def constant_dim(eps):
    faults.pin_action_dim(2, 0.0)(eps)  # the z command lost at export
    return None


def nan_in_demo_3(eps):
    eps[3].actions[17, 1] = np.nan  # in the actions: the tests' nan_at edits an observation
    return 3


def demo_0_five_more_times(eps):
    faults.repeat_demo(0, 5)(eps)
    return 0


def demo_0_reexported_with_float_noise(eps):
    twin = copy.deepcopy(eps[0])
    rng = np.random.default_rng(0)
    twin.actions = twin.actions + rng.normal(0, 1e-5, twin.actions.shape).astype(np.float32)
    twin.obs = {k: v + rng.normal(0, 1e-6, v.shape).astype(v.dtype) for k, v in twin.obs.items()}
    eps.append(twin)
    return 0


def actions_x100_in_demo_7(eps):
    faults.scale_actions(7, 100)(eps)
    return 7


def demo_12_never_stopped(eps):
    e = eps[12]
    extra = 5 * len(e)  # the recorder kept the last frame for five more episode lengths
    e.actions = np.concatenate([e.actions, np.repeat(e.actions[-1:] * 0, extra, 0)])
    e.obs = {k: np.concatenate([v, np.repeat(v[-1:], extra, 0)]) for k, v in e.obs.items()}
    return 12


def glitch_in_demo_5(eps):
    faults.glitch(5, "robot_state", 40, 0, 0.5)(eps)  # the hand 50 cm away for one frame
    return 5


def frozen_state_in_demo_9(eps):
    faults.freeze(9, "robot_state", 20, 60)(eps)  # the proprio stream stalled
    return 9


def hand_x_clipped(eps):
    faults.clip_below("robot_state", 0, 80)(eps)  # a sensor whose range ends inside the workspace
    return None


def every_demo_starts_in_the_previous_scene(eps):
    faults.start_from_the_previous_scene()(eps)  # the tests' fault, on every key
    return 0


def timestamps_at_another_fps(folder: Path) -> int | None:
    import pyarrow.parquet as pq

    path = folder / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path).to_pydict()
    table["timestamp"] = [t * 2 for t in table["timestamp"]]  # written at 40 fps, declared 80
    import pyarrow as pa

    pq.write_table(pa.table(table), path)
    return None


def stats_of_another_dataset(folder: Path) -> int | None:
    stats = json.loads((folder / "meta/stats.json").read_text())
    stats["action"]["mean"] = [v + 0.5 for v in stats["action"]["mean"]]
    stats["action"]["std"] = [v * 3 for v in stats["action"]["std"]]
    (folder / "meta/stats.json").write_text(json.dumps(stats))
    return None


FAULTS = [
    ("action dim 2 constant", "near-constant-action-dim", constant_dim, None),
    ("one NaN in demo 3", "nan-in-data", nan_in_demo_3, None),
    ("demo 0 recorded five more times", "duplicate-episodes", demo_0_five_more_times, None),
    ("demo 0 re-exported with float noise", "duplicate-episodes", demo_0_reexported_with_float_noise, None),
    ("one demo's actions x100", "outlier-episodes", actions_x100_in_demo_7, None),
    ("a recording that never stopped (demo 12, 6x long)", "outlier-episodes", demo_12_never_stopped, None),
    ("a one-frame glitch in demo 5's hand state", "action-jumps", glitch_in_demo_5, None),
    ("hand state frozen for 40 steps in demo 9", "frozen-signals", frozen_state_in_demo_9, None),
    ("hand x clipped by a sensor limit", "clipped-values", hand_x_clipped, None),
    ("every demo's first observation from the previous demo's scene", "stale-first-observation",
     every_demo_starts_in_the_previous_scene, None),
    ("timestamps written at half the declared fps", "dataset-format", None, timestamps_at_another_fps),
    ("meta/stats.json from other data", "dataset-format", None, stats_of_another_dataset),
    ("every demo from one initial state", "initial-state-diversity", None, None),  # its own collection
]


# --- running each tool -----------------------------------------------------------------------
def masked(text: str, episodes: bool = False) -> str:
    """A message with its measurements masked; with `episodes`, its episode numbers too (what
    kind of message it is, whichever episode it is about)."""
    if not episodes:
        text = re.sub(r"(episode[s]?\s*)(\d+)", r"\1E\2E", text)
    text = re.sub(r"(?<!E)-?\d+(\.\d+)?(e-?\d+)?%?(?!E)", "#", text)
    return text


def lerobot_doctor(folder: Path) -> list[str]:
    done = subprocess.run([str(BIN / "lerobot-doctor"), "check", "--json", str(folder.resolve())],
                          capture_output=True, text=True, timeout=900)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return [f"CRASH: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"]
    return [f"{c['name']}: {m['message']}" for c in report.get("checks", []) for m in c.get("messages", [])
            if m.get("severity") in ("WARN", "FAIL")]


def lelint(folder: Path, work: Path) -> list[str]:
    out = work / "lelint.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "COLUMNS": "200"}
    # An absolute path: lelint reads a relative one as a Hub repo id.
    done = subprocess.run([str(BIN / "lelint"), "check", str(folder.resolve()), "--no-video", "--json", str(out)],
                          capture_output=True, text=True, timeout=900, env=env)
    if not out.exists():
        return [f"CRASH: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"]
    report = json.loads(out.read_text())
    return [f"{f['check']} episode {f.get('episode')}: {f['message']}" for f in report.get("findings", [])
            if f.get("severity") in ("warning", "error")]


def vlascope(folder: Path, work: Path) -> tuple[list[dict], int, float]:
    work.mkdir(parents=True, exist_ok=True)
    out = work / "vlascope-report"
    start = time.time()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = vlascope_main(["doctor", "--dataset", str(folder), "--quick", "--fail-on", "warning",
                              "--out", str(out), "--device", "cpu"])
    seconds = time.time() - start
    findings = json.loads((out / "findings.json").read_text()) if (out / "findings.json").exists() else []
    return findings, code, seconds


def peer_verdict(faulty: list[str], healthy: list[str], culprit: int | None) -> dict:
    """Found: a kind of warning the healthy copy does not raise at all, or a new warning that
    names the culprit episode. (A copy with more episodes repeats the healthy warnings for the
    new episodes; those find nothing.)"""
    if any(m.startswith("CRASH") for m in faulty + healthy):  # a tool that could not read it found nothing
        return {"found": False, "names_culprit": False,
                "new_messages": [m for m in faulty + healthy if m.startswith("CRASH")][:2]}
    kinds = {masked(m, episodes=True) for m in healthy}
    seen = {masked(m) for m in healthy}
    new_kind = [m for m in faulty if masked(m, episodes=True) not in kinds]
    fresh = [m for m in faulty if masked(m) not in seen]
    about_culprit = [m for m in fresh if culprit is not None and names([m], culprit)]
    evidence = new_kind + [m for m in about_culprit if m not in new_kind]
    return {"found": bool(evidence), "names_culprit": bool(about_culprit) or (culprit is None and bool(new_kind)),
            "new_messages": evidence[:8]}


def names(messages: list[str], episode: int | None) -> bool:
    if episode is None:
        return True
    return any(re.search(rf"episode[s]?\s*{episode}\b", m) or re.search(rf"episode_{episode}\b", m)
               for m in messages)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="outputs/data_doctors")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = out / "pick-place.hdf5"
    if not base.exists():
        collect_demos(TASK, DEMOS, str(base), seed=0, progress=False)
    fixed = out / "pick-place-fixed.hdf5"
    if not fixed.exists():
        collect_demos(TASK, DEMOS, str(fixed), seed=0, fixed_init=True, progress=False)
    healthy = read_dataset(str(base))

    copies = {"healthy": (None, healthy.episodes, None)}
    for name, expected, edit_episodes, edit_folder in FAULTS:
        if expected == "initial-state-diversity":
            copies[name] = (expected, read_dataset(str(fixed)).episodes, None)
            continue
        eps = copy.deepcopy(healthy.episodes)
        culprit = edit_episodes(eps) if edit_episodes else None
        copies[name] = (expected, eps, (culprit, edit_folder))

    rows, reports = [], {}
    for name, (expected, eps, how) in copies.items():
        work = out / re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        folder = work / "lerobot"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        data = copy.copy(healthy)
        data.episodes = eps
        write_lerobot(folder, data)
        culprit = how[0] if how else None
        if how and how[1]:
            how[1](folder)
        start = time.time()
        reports[name] = {"lerobot-doctor": lerobot_doctor(folder)}
        peer_seconds = {"lerobot-doctor": time.time() - start}
        start = time.time()
        reports[name]["lerobot-lint"] = lelint(folder, work)
        peer_seconds["lerobot-lint"] = time.time() - start
        findings, code, seconds = vlascope(folder, work)
        flagged = [f for f in findings if f["severity"] in ("error", "warning")]
        row = {"case": name, "expected": expected, "culprit_episode": culprit, "vlascope_exit": code,
               "vlascope_seconds": round(seconds, 1),
               "peer_seconds": {k: round(v, 1) for k, v in peer_seconds.items()},
               "vlascope_flags": sorted({f"{f['id']}:{f['severity']}" for f in flagged})}
        if expected is None:
            row["warnings"] = {"vlascope": len(flagged), **{k: len(v) for k, v in reports[name].items()}}
        else:
            hits = [f for f in flagged if f["id"] == expected]
            text = [f["title"] + " " + json.dumps(f["evidence"]) for f in hits]
            row["vlascope"] = {"found": bool(hits), "names_culprit": bool(hits) and names(text, culprit),
                               "titles": [f["title"] for f in hits]}
            for peer in ("lerobot-doctor", "lerobot-lint"):
                row[peer] = peer_verdict(reports[name][peer], reports["healthy"][peer], culprit)
        rows.append(row)
        (work / "peer_reports.json").write_text(json.dumps(reports[name], indent=1))
        print(f"{name:52s} " + " ".join(
            f"{tool}={'-' if expected is None else ('found' if row[tool]['found'] else 'missed')}"
            for tool in ("vlascope", "lerobot-doctor", "lerobot-lint")) + f" (exit {code})", flush=True)

    # False alarms on healthy expert data of 12 tasks.
    alarms = []
    for task in HEALTHY_TASKS:
        hdf5 = out / "healthy" / f"{task}.hdf5"
        if not hdf5.exists():
            hdf5.parent.mkdir(parents=True, exist_ok=True)
            collect_demos(task, DEMOS, str(hdf5), seed=0, progress=False)
        work = out / "healthy" / task
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        folder = work / "lerobot"
        write_lerobot(folder, read_dataset(str(hdf5)))
        findings, code, seconds = vlascope(folder, work)
        flagged = [f"{f['id']}: {f['title']}" for f in findings if f["severity"] in ("error", "warning")]
        alarms.append({"task": task, "vlascope": flagged, "vlascope_exit": code, "vlascope_seconds": round(seconds, 1),
                       "lerobot-doctor": len(lerobot_doctor(folder)), "lerobot-lint": len(lelint(folder, work))})
        print(f"healthy {task:28s} vlascope {len(flagged)} flags (exit {code}), lerobot-doctor "
              f"{alarms[-1]['lerobot-doctor']}, lerobot-lint {alarms[-1]['lerobot-lint']}", flush=True)

    # The whole --quick doctor on a 50-demo dataset, as a gate in a pipeline would run it.
    fifty = out / "pick-place-50.hdf5"
    if not fifty.exists():
        collect_demos(TASK, 50, str(fifty), seed=1, progress=False)
    findings, code, quick_seconds = vlascope(fifty, out / "quick-50")
    print(f"vlascope doctor --quick on 50 demos: {quick_seconds:.0f}s (exit {code})", flush=True)

    faults = [r for r in rows if r["expected"]]
    summary = {tool: {"found": sum(r[tool]["found"] for r in faults),
                      "names_culprit": sum(r[tool]["names_culprit"] for r in faults), "of": len(faults)}
               for tool in ("vlascope", "lerobot-doctor", "lerobot-lint")}
    result = {**provenance(), "task": TASK, "demos": DEMOS, "summary": summary, "cases": rows,
              "healthy_tasks": alarms, "quick_50_demos_seconds": round(quick_seconds, 1),
              "healthy_flags": {"vlascope": sum(len(a["vlascope"]) for a in alarms),
                                "lerobot-doctor": sum(a["lerobot-doctor"] for a in alarms),
                                "lerobot-lint": sum(a["lerobot-lint"] for a in alarms)},
              "peers": {"lerobot-doctor": "0.2.0", "lerobot-lint": "0.1.1"}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "data_doctors.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary), json.dumps(result["healthy_flags"]))


if __name__ == "__main__":
    main()
