# SPDX-License-Identifier: Apache-2.0
"""The correctness gate: a fast but wrong kernel never ships.

Every kernel that is exported passes, on the device it runs on:

* fresh random inputs on every trial (a new seed each call), ordinary and adversarial
  (large magnitude, tiny, mixed scale) values, and tile-edge probes;
* outputs poisoned with NaN before each run, so an element the kernel never writes fails;
* an fp64 reference and an elementwise, dtype-aware error bound: ``(2K + 8) u_acc |A||B|``
  (the worst case of any summation order over a reduction of length K) plus one rounding of the
  output dtype (two, for a cast that rounds twice);
* bitwise determinism across repeated runs on the same inputs;
* shapes one off in every dimension must be rejected with an error, not read out of bounds.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .workloads import Workload, np_dtype

#: Unit roundoff of each dtype (half an ulp at 1.0).
UNIT_ROUNDOFF = {"float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}
#: Smallest positive normal of each dtype (absolute error floor where outputs underflow).
TINY = {"float32": 1.18e-38, "float16": 6.1e-5, "bfloat16": 1.18e-38}
DEFAULT_KINDS = ("normal", "normal", "large", "tiny", "mixed", "edge")


class VerificationError(AssertionError):
    """A kernel computed a wrong answer; the message says which check and by how much."""


@dataclass
class VerifyReport:
    """What the gate checked and what failed (empty ``failures`` means the kernel passed)."""

    workload: str
    checks: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    max_error_ratio: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict:
        return {
            "workload": self.workload,
            "passed": self.passed,
            "checks": self.checks,
            "failures": self.failures,
            "max_error_ratio": self.max_error_ratio,
        }


def tolerance(workload: Workload, inputs: list[np.ndarray], ref: np.ndarray) -> np.ndarray:
    """Elementwise error bound for ``workload`` on ``inputs`` (see module doc)."""
    red = workload.opdef.reduction(workload.shape)
    u_acc = UNIT_ROUNDOFF[workload.acc_dtype]
    u_out = UNIT_ROUNDOFF[workload.out_dtype]
    bound = (2 * red + 8) * u_acc * workload.magnitude(inputs)
    # Two output roundings: fp32 -> out dtype may round twice (via an intermediate).
    return bound + 2 * u_out * np.abs(ref) + TINY[workload.out_dtype]


def verify(
    run: Callable,
    workload: Workload,
    device=None,
    *,
    kinds=DEFAULT_KINDS,
    seed: int | None = None,
    check_shapes: bool = True,
) -> VerifyReport:
    """Run the gate on ``run(*args)``, a TVM function taking inputs then output.

    Parameters
    ----------
    run : callable
        The kernel: ``run(*inputs, out)`` on ``tvm.runtime.Tensor`` arguments.
    workload : Workload
        What the kernel computes.
    device : tvm.runtime.Device, optional
        Where the tensors live (default CPU).
    kinds : sequence of str
        Input distributions, one trial each (see ``Workload.random_inputs``).
    seed : int, optional
        Seed of the input generator; fresh from the OS when None (the default).
    """
    import tvm

    device = device or tvm.cpu()
    rng = np.random.default_rng(secrets.randbits(64) if seed is None else seed)
    report = VerifyReport(workload.name)
    out_np = np_dtype(workload.out_dtype)
    last = None
    for kind in kinds:
        inputs = workload.random_inputs(rng, kind)
        args = [tvm.runtime.tensor(a, device) for a in inputs]
        out = tvm.runtime.tensor(np.full(workload.output.shape, np.nan, dtype=out_np), device)
        run(*args, out)
        got = out.numpy().astype(np.float64)
        ref = workload.reference(inputs)
        report.checks.append(f"values:{kind}")
        unwritten = int(np.isnan(got).sum())
        if unwritten:
            report.failures.append(f"{kind}: {unwritten} of {got.size} outputs NaN (unwritten?)")
            continue
        err = np.abs(got - ref)
        ratio = float(np.max(err / tolerance(workload, inputs, ref)))
        report.max_error_ratio = max(report.max_error_ratio, ratio)
        if not ratio <= 1.0:
            where = np.unravel_index(int(np.argmax(err)), err.shape)
            report.failures.append(
                f"{kind}: error {ratio:.3g}x the bound; worst at {tuple(map(int, where))}: "
                f"got {got[where]:.6g}, want {ref[where]:.6g}"
            )
        last = (args, got)
    if last is not None:
        _check_determinism(run, workload, device, last, report, out_np)
    if check_shapes:
        _check_shape_rejection(run, workload, device, report)
    return report


def _check_determinism(run, workload, device, last, report, out_np) -> None:
    import tvm

    args, first = last
    report.checks.append("determinism")
    for _ in range(2):
        out = tvm.runtime.tensor(np.full(workload.output.shape, np.nan, dtype=out_np), device)
        run(*args, out)
        again = out.numpy().astype(np.float64)
        if not np.array_equal(again, first, equal_nan=True):
            diff = int(np.sum(again != first))
            report.failures.append(f"determinism: {diff} elements differ between runs")
            return


def _check_shape_rejection(run, workload, device, report) -> None:
    import tvm

    report.checks.append("shape-rejection")
    specs = [*workload.inputs, workload.output]
    for index, spec in enumerate(specs):
        for axis in range(len(spec.shape)):
            shapes = [s.shape for s in specs]
            bad = list(shapes[index])
            bad[axis] += 1
            shapes[index] = tuple(bad)
            args = [
                tvm.runtime.tensor(np.zeros(shape, dtype=np_dtype(s.dtype)), device)
                for shape, s in zip(shapes, specs)
            ]
            try:
                run(*args)
            except Exception:  # the kernel refused the wrong shape: what we want
                continue
            report.failures.append(f"shape: {spec.name} axis {axis} of size {bad[axis]} accepted")


def require(report: VerifyReport) -> VerifyReport:
    """Raise :class:`VerificationError` unless the report passed."""
    if not report.passed:
        raise VerificationError(f"{report.workload} failed: " + "; ".join(report.failures))
    return report
