# SPDX-License-Identifier: Apache-2.0
"""The tuner on the GPU: near-tied whole kernels are timed again, together, before the gate
picks (``Tuner._retimed``). Marked ``gpu``: run on the GPU machine with
``python -m pytest tests/gpu -m gpu -v``."""

from __future__ import annotations

import pytest

from autokernel_tvm.config import TuneConfig
from autokernel_tvm.tuner import Tuner
from autokernel_tvm.workloads import Workload

pytestmark = pytest.mark.gpu


def test_near_tied_kernels_are_timed_again_and_the_fastest_kept(tmp_path):
    # every measured whole kernel within 50% of the fastest is a finalist (three at most);
    # the winner is the fastest of their second timing, at that timing
    config = TuneConfig(
        target="cuda", trials=3, hit_trials=0, retime_within=0.5, work_dir=str(tmp_path),
        save_library=False,
    )  # fmt: skip
    result = Tuner(config).tune(Workload("gemm_nt", (2048, 2048, 1024), "float16"))
    retimed = result.space_report["retimed"]
    assert isinstance(retimed, list) and 2 <= len(retimed) <= 3, retimed
    assert all(r["first_us"] > 0 and r["again_us"] > 0 for r in retimed)
    fastest = min(retimed, key=lambda r: r["again_us"])
    assert result.space == fastest["space"]
    assert result.latency_s * 1e6 == pytest.approx(fastest["again_us"])
