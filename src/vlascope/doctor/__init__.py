"""The doctor: finds why a policy with a good loss fails, with evidence, plots and a fix.

It reads datasets, checkpoints and evaluation results; nothing else in vlascope imports it.
"""

from vlascope.doctor.context import DoctorContext
from vlascope.doctor.findings import Finding
from vlascope.doctor.run import CHECKS, build_context, run_checks, run_doctor

__all__ = ["CHECKS", "DoctorContext", "Finding", "build_context", "run_checks", "run_doctor"]
