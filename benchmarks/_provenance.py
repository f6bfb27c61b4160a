"""Where a result came from (the command, the machine and the commit) and where it goes
(benchmarks/results/<script>[-<recipe>].json); named recipes: the argument sets behind the
figures on the results page, so that a figure is re-measured by name."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A test that runs a benchmark script points this elsewhere: the results page's files are kept.
RESULTS = Path(os.environ.get("VLASCOPE_RESULTS_DIR") or ROOT / "benchmarks" / "results")


def provenance() -> dict:
    def git(*args) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    import torch

    # A run confined to some of the cores (taskset, a container's cpuset) is timed on those.
    usable = len(os.sched_getaffinity(0))
    cores = f"{os.cpu_count()} CPU cores" + (f" ({usable} usable)" if usable < os.cpu_count() else "")
    return {"command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": f"{platform.node()}: {cores}, "
                       + (torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"),
            "python": platform.python_version(), "torch": torch.__version__,
            # A copy of the working tree on another machine may carry a stale .git: the commit
            # can be named from outside.
            "commit": os.environ.get("VLASCOPE_COMMIT") or (
                git("rev-parse", "--short", "HEAD") + ("+changes" if git("status", "--porcelain", "-uno") else "")),
            "date": datetime.date.today().isoformat()}


def parse_args(parser: argparse.ArgumentParser, recipes: dict[str, list[str]] | None = None,
               argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; `--recipe NAME` stands for that recipe's arguments, placed before
    the command line's own so that an argument given there overrides the recipe's."""
    recipes = recipes or {}
    if recipes:
        parser.add_argument("--recipe", choices=sorted(recipes),
                            help="a named argument set behind a figure on the results page")
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--recipe" in argv and recipes:
        i = argv.index("--recipe")
        name = argv[i + 1] if i + 1 < len(argv) else ""
        if name not in recipes:
            parser.error(f"--recipe: expected one of {', '.join(sorted(recipes))}, got {name!r}")
        argv = [*recipes[name], *argv[:i], *argv[i + 2:], "--recipe", name]
    args = parser.parse_args(argv)
    if not recipes:
        args.recipe = None
    return args


def parse_tasks(parser: argparse.ArgumentParser, names: list[str], sets: dict[str, list[str]]) -> list[str]:
    """The MetaWorld tasks `names` stand for, each the name of one of `sets` or of a task; a name
    that is neither ends the command with the parser's one-line error."""
    from vlascope.envs.metaworld import expand_tasks
    from vlascope.errors import VlascopeError

    try:
        return expand_tasks(names, sets)
    except VlascopeError as exc:
        parser.error(str(exc))


def write_results(script: str, args: argparse.Namespace, result: dict) -> Path:
    """benchmarks/results/<script>[-<recipe>].json: the figures with their provenance."""
    name = script + (f"-{args.recipe}" if getattr(args, "recipe", None) else "")
    path = RESULTS / f"{name}.json"
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**provenance(), **result}, indent=2, default=_plain) + "\n")
    print(f"results: {path}", flush=True)
    return path


def _plain(value):
    """numpy scalars and arrays, and paths, as JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
