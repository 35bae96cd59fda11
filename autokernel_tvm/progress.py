# SPDX-License-Identifier: Apache-2.0
"""Progress bar and failure counting, as a MetaSchedule measure callback."""

from __future__ import annotations

from collections import Counter

from tqdm.auto import tqdm
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms

from .builder import failure_reason
from .database import records


@derived_object
class ProgressCallback(ms.measure_callback.PyMeasureCallback):
    """Advance a tqdm bar per measured candidate; count build/run failures by reason."""

    def __init__(self, total: int, desc: str, enabled: bool = True):
        super().__init__()
        self.failures: Counter = Counter()
        self.best_s = float("inf")
        self.bar = tqdm(total=total, desc=desc, unit="trial", disable=not enabled, leave=False)

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
        for built, ran in zip(builder_results, runner_results):
            if built.error_msg:
                self.failures["build: " + failure_reason(built.error_msg)] += 1
            elif ran.error_msg:
                self.failures["run: " + failure_reason(ran.error_msg)] += 1
            elif ran.run_secs:
                secs = [float(s) for s in ran.run_secs]
                self.best_s = min(self.best_s, sum(secs) / len(secs))
        self.bar.update(len(measure_candidates))
        best = f"{self.best_s * 1e6:.1f}us" if self.best_s < float("inf") else "-"
        self.bar.set_postfix(best=best, failed=sum(self.failures.values()))

    def close(self) -> None:
        self.bar.close()


def count_records(db_dir: str) -> int:
    """Candidates already measured in a database directory (resume point; damaged lines are
    not counted: :func:`autokernel_tvm.database.repair` moves them out)."""
    return sum(1 for _ in records(db_dir))
