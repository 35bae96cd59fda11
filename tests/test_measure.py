# SPDX-License-Identifier: Apache-2.0
"""The whole-kernel measurer on llvm: measured, recorded, resumed, verified; a kernel that does
not build is a counted failure, not a crash."""

import json
import os

import pytest
from strided_kernels import strided_gemm  # shared with the gate's tests

from autokernel_tvm.config import TuneConfig
from autokernel_tvm.families import Kernel, get
from autokernel_tvm.measure import KERNEL_RECORD
from autokernel_tvm.targets import make_target
from autokernel_tvm.tuner import Tuner
from autokernel_tvm.workloads import Workload


def test_whole_kernel_run_is_measured_resumed_and_verified(tmp_path):
    workload = Workload("gemm", (64, 64, 64), "float32")
    tuner = Tuner(TuneConfig(target="llvm", work_dir=str(tmp_path), trials=4), progress=False)
    run = tuner.measure(workload, Kernel(workload.ir_module()), "kernels/plain")
    assert run.kernel and run.trials == 1 and not run.failures and run.best_s < 1.0
    with open(os.path.join(run.db_dir, KERNEL_RECORD)) as f:
        assert json.load(f)["latency_s"] == run.best_s
    again = tuner.measure(workload, Kernel(workload.ir_module()), "kernels/plain")
    assert again.best_s == run.best_s  # resumed from the record, not re-measured
    assert (run.resumed, again.resumed) == (0, 1)
    # what its time went to: the build, then the timing (none for the resumed run)
    assert set(run.phases) == {"build", "time"} and again.phases == {}
    assert 0 < run.phases["build"] and 0 < run.phases["time"]
    assert run.phases["build"] + run.phases["time"] <= run.seconds + 0.01
    result = tuner._pick_verified(workload, [run], 1.0, {})
    assert result.verify["passed"] and "no schedule trace" in result.trace


def test_whole_kernel_that_does_not_build_is_a_counted_failure(tmp_path):
    nt = Workload("gemm_nt", (1024, 1024, 1024), "float16")
    wgmma = get("cuda.wgmma")
    kernel = wgmma.candidate(wgmma.default, nt, make_target("cuda", "sm_90a"))
    tuner = Tuner(TuneConfig(target="llvm", work_dir=str(tmp_path), trials=4), progress=False)
    run = tuner.measure(nt, kernel, "kernels/wgmma")  # a CUDA kernel cannot build for llvm
    assert run.trials == 1 and sum(run.failures.values()) == 1
    assert next(iter(run.failures)).startswith("build: ")
    assert run.phases["time"] == 0 and run.phases["build"] > 0  # nothing ran


def test_candidates_of_a_workload_are_timed_on_inputs_drawn_once(tmp_path, monkeypatch):
    """Every candidate is timed on the same inputs (one seed): they are drawn and put on the
    device once per workload, not per candidate; a new workload replaces them."""
    from autokernel_tvm.workloads import Workload as W

    draws = []
    real = W.random_inputs

    def counted(self, rng, kind="normal"):
        draws.append(self.name)
        return real(self, rng, kind)

    monkeypatch.setattr(W, "random_inputs", counted)
    tuner = Tuner(TuneConfig(target="llvm", work_dir=str(tmp_path), trials=4), progress=False)
    first, second = Workload("gemm", (64, 64, 64), "float32"), Workload("gemm", (32, 64, 64))
    for label in ("kernels/a", "kernels/b"):
        assert not tuner.measure(first, Kernel(first.ir_module()), label).failures
    assert draws == [first.name]
    assert not tuner.measure(second, Kernel(second.ir_module()), "kernels/c").failures
    assert draws == [first.name, second.name] and list(tuner._timing_args) == [second]


HANGS = (
    "from autokernel_tvm.config import TuneConfig\n"
    "from autokernel_tvm.families import Kernel\n"
    "from autokernel_tvm.tuner import Tuner\n"
    "from autokernel_tvm.workloads import Workload\n"
    "w = Workload('gemm', (64, 64, 64), 'float32')\n"
    "cfg = TuneConfig(target='llvm', work_dir={work!r}, runner_timeout_s={timeout})\n"
    "tuner = Tuner(cfg, progress=False)\n"
    "run = tuner.measure(w, Kernel(w.ir_module()), 'kernels/hangs')\n"
    "tuner._pick_verified(w, [run], 1.0, {{}})\n"
    "print('not reached')\n"
)


@pytest.mark.parametrize(
    "point, timeout, failure",
    [("kernel-measure", 2, "2 s of timing"), ("kernel-gate", 0.5, "5 s of the correctness gate")],
)
def test_a_hung_kernel_is_recorded_and_the_rerun_resumes_past_it(tmp_path, point, timeout, failure):
    """A whole kernel that runs past runner_timeout_s while timed, or past ten of them in the
    gate (injected: a sleep there), is recorded as hung and its process exits with a one-line
    error; the rerun does not run it again."""
    import subprocess
    import sys

    from autokernel_tvm.measure import HUNG_EXIT

    env = {
        **os.environ,
        "AUTOKERNEL_FAULT": f"hang@{point}#1",
        "AUTOKERNEL_FAULT_COUNTER": str(tmp_path / "arrivals"),
    }
    script = HANGS.format(work=str(tmp_path), timeout=timeout)
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == HUNG_EXIT and "not reached" not in proc.stdout, proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert f"ran {failure} (hung)".replace(" of ", " in ") in line and "resume" in line
    workload = Workload("gemm", (64, 64, 64), "float32")
    tuner = Tuner(TuneConfig(target="llvm", work_dir=str(tmp_path), trials=4), progress=False)
    run = tuner.measure(workload, Kernel(workload.ir_module()), "kernels/hangs")
    assert run.resumed == 1 and dict(run.failures) == {f"hang: no result in {failure}": 1}


def test_gpu_candidates_are_timed_one_call_after_each_l2_flush():
    """On a GPU every candidate is timed as single calls, each after an L2 flush (back-to-back
    calls kept a decode GEMM's 32 MB weight in the H200's L2: tuned at 12.8 us, 21.5 us as a
    model calls it); on a CPU, back-to-back as the runner_* options say. The evaluator runs on
    a real (llvm) module here: one cost per flushed call."""
    import numpy as np
    import tvm
    from tvm.s_tir import meta_schedule as ms

    from autokernel_tvm.config import flushed_run_evaluator

    config = TuneConfig(target="cuda", runner_gpu_calls=5)
    assert config.gpu and config.evaluator() == {"number": 1, "repeat": 5, "min_repeat_ms": 0}
    cpu = config.replace(target="llvm")
    assert not cpu.gpu and cpu.evaluator() == {"number": 3, "repeat": 1, "min_repeat_ms": 50}
    workload = Workload("gemm", (32, 32, 32))
    mod = tvm.compile(workload.ir_module(), target="llvm").mod
    dev = tvm.cpu()
    args = [
        tvm.runtime.tensor(a, device=dev) for a in workload.random_inputs(np.random.default_rng(0))
    ]
    args.append(tvm.runtime.empty(workload.output.shape, workload.output.dtype, device=dev))
    evaluator = ms.runner.EvaluatorConfig(**config.evaluator(), enable_cpu_cache_flush=False)
    costs = flushed_run_evaluator(mod, dev, evaluator, [args, args])
    assert len(costs) == 10 and all(0 < c < 1 for c in costs)


def test_kernels_built_ahead_in_the_workers_are_loaded_and_timed(tmp_path):
    """build_ahead builds a batch of whole kernels at once in the builder's workers; measure
    then loads each one's library instead of building it, times it like a kernel built here,
    and a kernel that fails in a worker is a counted build failure. One kernel alone is built
    here (no library to link and load)."""
    workload = Workload("gemm", (64, 64, 64), "float32")
    tuner = Tuner(TuneConfig(target="llvm", work_dir=str(tmp_path), trials=4), progress=False)
    nt = Workload("gemm_nt", (1024, 1024, 1024), "float16")
    wgmma = get("cuda.wgmma")
    broken = wgmma.candidate(wgmma.default, nt, make_target("cuda", "sm_90a"))  # not for llvm
    measurer = tuner.kernel_measurer
    measurer.build_ahead(workload, [("kernels/solo", Kernel(workload.ir_module()))])
    assert tuner._builds == {}
    batch = [("kernels/a", Kernel(workload.ir_module())), ("kernels/bad", broken)]
    measurer.build_ahead(workload, batch)
    assert len(tuner._builds) == 2  # both started, in the workers
    run = tuner.measure(workload, batch[0][1], "kernels/a")
    assert run.kernel and not run.failures and 0 < run.best_s < 1.0
    bad = tuner.measure(workload, broken, "kernels/bad")
    assert next(iter(bad.failures)).startswith("build: ")
    here = tuner.measure(workload, Kernel(workload.ir_module()), "kernels/here")
    # the same kernel, either way: within a factor a loaded 2-core CI machine keeps (timings of
    # one 64^3 kernel there differ by 2x between calls); a wrong or unloaded library would not
    assert 0.1 < here.best_s / run.best_s < 10
    measurer.build_ahead(workload, batch)  # measured already: nothing starts again
    assert len(tuner._builds) == 2
    # the gate takes the winner's library as the workers built it (none for the failure)
    assert tuner._built_ahead(run.db_dir) is not None and tuner._built_ahead(bad.db_dir) is None
    result = tuner._pick_verified(workload, [run, bad, here], 1.0, {})
    assert result.verify["passed"]
    tuner.builder.shutdown()


def test_kernels_taking_padded_output_rows_are_timed_and_gated_on_them(tmp_path):
    """A whole kernel whose function has ``autokernel.out_row_pitch`` is timed with its output a
    view of rows that far apart, as torch's loader calls it (this one refuses plain rows: timed
    on them, it fails), or on plain rows where the tuning is for a Relax model; the gate checks
    such a view beside plain rows."""
    import tvm

    from autokernel_tvm.manifest import OUT_PITCH_ATTR

    workload = Workload("gemm", (64, 64, 64), "float32")
    tuner = Tuner(TuneConfig(target="llvm", work_dir=str(tmp_path), trials=4), progress=False)

    def kernel(func, pitch):
        func = func.with_attr(OUT_PITCH_ATTR, pitch) if pitch else func
        return Kernel(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}))

    picky = strided_gemm(64, 64, 64, "float32", pitch_wanted=72)  # refuses plain rows
    padded = tuner.measure(workload, kernel(picky, 72), "kernels/padded")
    assert not padded.failures and padded.best_s < 1.0
    plain = tuner.measure(workload, kernel(picky, None), "kernels/plain")
    assert next(iter(plain.failures)).startswith("run: ")
    # a model through Relax calls it on plain rows (padded_outputs=False): timed on those
    as_model = Tuner(
        TuneConfig(target="llvm", work_dir=str(tmp_path / "m"), trials=4, padded_outputs=False),
        progress=False,
    )
    on_plain = as_model.measure(workload, kernel(picky, 72), "kernels/padded")
    assert next(iter(on_plain.failures)).startswith("run: ")
    anyrows = tuner.measure(workload, kernel(strided_gemm(64, 64, 64, "float32"), 72), "kernels/a")
    result = tuner._pick_verified(workload, [anyrows], 1.0, {})
    assert result.verify["passed"] and "padded-output:72" in result.verify["checks"]
