# SPDX-License-Identifier: Apache-2.0
"""Measure one whole-kernel candidate (a TIRx sketch such as ``cuda.wgmma``) as a design space
of one point: build, time on the tuner's device, record, resume.

MetaSchedule's search, database and runner work on schedule traces; a TIRx kernel has none, so
its single measurement is kept in ``<work_dir>/<workload>/<label>/kernel.json`` instead and
timed with the same evaluator settings as MetaSchedule's ``LocalRunner`` (``TuneConfig.runner_*``:
random inputs, ``number`` calls per ``repeat``, at least ``min_repeat_ms``).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import numpy as np
import tvm

from . import builder as build_lib
from .database import atomic_write_json

RECORD = "kernel.json"


def run_kernel(tuner, workload, mod: tvm.IRModule, label: str):
    """A :class:`~autokernel_tvm.tuner.SpaceRun` for the kernel ``mod`` (one trial)."""
    from .tuner import FAILED, SpaceRun

    db_dir = os.path.join(tuner.workload_dir(workload), label)
    os.makedirs(db_dir, exist_ok=True)
    path = os.path.join(db_dir, RECORD)
    start = time.time()
    record = None
    if os.path.exists(path):  # resumed: measured (or failed to build) in an earlier run
        with open(path) as f:
            try:
                record = json.load(f)
            except ValueError:  # written before writes were atomic, then killed: measure again
                record = {"latency_s": None, "failure": "damaged record"}
        if record["latency_s"] is None and not record["failure"].startswith("build:"):
            record = None  # a failure at run time may be the device's, not the kernel's: retry
    if record is None:
        record = _measure(tuner, workload, mod)
        atomic_write_json(path, record)
    failures = Counter({record["failure"]: 1} if record["failure"] else {})
    best = record["latency_s"] if record["latency_s"] is not None else FAILED
    tflops = workload.flops / best / 1e12 if best < FAILED else 0.0
    seconds = time.time() - start
    return SpaceRun(label, db_dir, 1, failures, best, seconds, [tflops], mod, kernel=True)


def _measure(tuner, workload, mod) -> dict:
    config = tuner.config
    try:
        exe = build_lib.build_module(mod, tuner.target)
    except Exception as err:  # a candidate that does not build is data, counted by reason
        if config.strict:
            raise
        return {"latency_s": None, "failure": "build: " + build_lib.failure_reason(str(err))}
    device = tuner.device()
    rng = np.random.default_rng(config.seed)
    args = [tvm.runtime.tensor(a, device=device) for a in workload.random_inputs(rng)]
    out = workload.output
    args.append(tvm.runtime.empty(out.shape, out.dtype, device=device))
    try:
        timer = exe.mod.time_evaluator(  # tvm.compile's Executable wraps the runtime module
            "main",
            device,
            number=config.runner_number,
            repeat=config.runner_repeat,
            min_repeat_ms=config.runner_min_repeat_ms,
        )
        latency = float(np.mean(timer(*args).results))
    except Exception as err:
        if config.strict:
            raise
        return {"latency_s": None, "failure": "run: " + build_lib.failure_reason(str(err))}
    return {"latency_s": latency, "failure": None}
