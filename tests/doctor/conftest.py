"""Doctor fixtures: real MetaWorld demos (pick-place, where every action dim moves) into which a
test plants one fault at a time (see faults.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import collected
from tests.doctor.faults import tiny_pipeline
from vlascope.data import read_dataset
from vlascope.doctor import DoctorContext
from vlascope.policies.interface import VlascopePolicy, vlascope_pipeline


@pytest.fixture(scope="session")
def pick_place(tmp_path_factory) -> str:
    return collected(tmp_path_factory, "pick-place.hdf5", "pick-place-v3", 6)


@pytest.fixture(scope="session")
def pick_place_fixed(tmp_path_factory) -> str:
    return collected(tmp_path_factory, "pick-place-fixed.hdf5", "pick-place-v3", 3, fixed_init=True)


def make_ctx(dataset, out: Path, make_policy=None, policy=None, task=None, quick=True,
             inputs=None) -> DoctorContext:
    """A doctor context over a vlascope pipeline `make_policy(episodes) -> Policy` (the tiny flow
    one by default) and optionally a trained vlascope `policy`, both seen through the interface."""
    data = read_dataset(dataset) if isinstance(dataset, str) else dataset
    build = make_policy or tiny_pipeline()
    return DoctorContext(dataset=data, out_dir=Path(out), make_policy=vlascope_pipeline(build, "flow"),
                         policy=VlascopePolicy(policy, "flow", build) if policy is not None else None,
                         task=task, quick=quick, eval_episodes=20, inputs=inputs)


def severities(findings, check_id: str) -> set[str]:
    return {f.severity for f in findings if f.id == check_id}
