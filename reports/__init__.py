"""Comparison reports, significance statistics and baseline checks over run folders.

Reads run folders only; never trains or evaluates.
"""

from reports.build import build_report
from reports.check import CheckResult, check_run, record_baseline
from reports.load import load_run, load_runs

__all__ = ["build_report", "record_baseline", "check_run", "CheckResult", "load_run", "load_runs"]
