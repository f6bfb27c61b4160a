"""Where a result came from: the command, the machine and the commit, for a results JSON."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def provenance() -> dict:
    def git(*args) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    import torch

    return {"command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": f"{platform.node()}: {os.cpu_count()} CPU cores, "
                       + (torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"),
            "python": platform.python_version(), "torch": torch.__version__,
            "commit": git("rev-parse", "--short", "HEAD") + ("+changes" if git("status", "--porcelain", "-uno") else ""),
            "date": datetime.date.today().isoformat()}
