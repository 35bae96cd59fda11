# SPDX-License-Identifier: Apache-2.0
"""The correctness gate: a fast but wrong kernel never ships.

Every kernel that is exported passes, on the device it runs on:

* **values on random inputs** (a fresh seed each call; ordinary, large, tiny, mixed-scale and
  tile-edge kinds) against an fp64 reference, within a probabilistic per-element bound
  (:func:`tolerance`) that grows like ``sqrt(K)`` times the size of the terms, as the rounding
  error of a correct fp32 accumulation does;
* **exact values on integer inputs** (:func:`exact_inputs`): small integers sized so that every
  partial sum, in any summation order, is exactly representable in the fp32 accumulator and in
  the output dtype, so the output must equal the reference exactly. A dropped K step, row,
  column or tile changes an integer and fails, at every K; the last row, column and K step are
  always nonzero and always compared;
* outputs poisoned with NaN before each run, so an element the kernel never writes fails;
* on the CPU, every buffer placed inside a guarded allocation (poisoned with NaN bytes before and
  after it): a write out of bounds or into an input fails, a read out of bounds reads NaN;
* bitwise determinism: the first dense trial is run twice more and the bytes compared;
* shapes one off in every dimension must be rejected with an error, not read out of bounds.

For big outputs the fp64 reference is computed for sampled rows and columns only (every
``g``-th index of each independent dim, at a random offset per block, plus the first and last
index): the bound is per element, so sampling is sound; an error confined to fewer than ``g``
rows or columns may be missed, ``g`` is 1 up to :data:`REFERENCE_BUDGET` flops and stays <= 32 for
4096^3. :func:`sanitize` runs ``compute-sanitizer`` on an exported CUDA kernel where it exists.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .workloads import Workload, np_dtype
from .workloads.dtypes import FP8_DTYPES, SMALLEST_NORMAL, is_extension
from .workloads.values import cast, small_nonzero_ints

#: Unit roundoff of each dtype (half an ulp at 1.0).
UNIT_ROUNDOFF = {"float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}
#: Smallest positive normal of each dtype (absolute error floor where outputs underflow).
TINY = SMALLEST_NORMAL
#: Largest integer up to which every integer is exact in each dtype (2^(mantissa bits + 1)).
EXACT_INT = {"float32": 2**24, "float16": 2**11, "bfloat16": 2**8}
#: Significand bits a Hopper tensor core keeps of an fp8 product's running sum: "around 14
#: bits" (DeepSeek-V3 technical report, section 3.3.2), not fp32's 24 (a truncation: one ulp,
#: 2^-13, per step). A ``fast_accum`` fp8 workload is held to that accumulator over all of K on
#: the GPU; a default one to fp32 sums of :data:`FP8_PROMOTE_K` products each summed in it (as
#: cuBLASLt and the ``accum="promoted"`` kernels sum). Exact integer inputs stay inside it.
FP8_ACC_BITS = 14
#: K of one fp8 wgmma: the tensor core cuts its running sum once per this many products
FP8_K_STEP = 32
#: products of one promoted fp8 partial sum (a K step of 128 bytes: four wgmma)
FP8_PROMOTE_K = 128
FP8_ULP = 2.0 ** (1 - FP8_ACC_BITS)
#: A quarter of each output dtype's largest finite value: where a product of sums must stay.
FINITE_OUT = {"float32": 8.5e37, "float16": 16376.0, "bfloat16": 8.5e37}
#: Magnitudes that round to inf in each output dtype: the largest finite value + half its ulp.
OVERFLOW = {
    "float32": (2 - 2**-24) * 2.0**127,
    "float16": 65520.0,
    "bfloat16": (2 - 2**-8) * 2.0**127,
}
#: Confidence factor of the probabilistic bound. With round-to-nearest the summation error of a
#: zero-mean reduction has a standard deviation near ``0.4 u sqrt(K) ||x||_2`` (Higham & Mary,
#: SIAM J. Sci. Comput. 2019), so 8 is ~20 standard deviations: a correct kernel never fails by
#: chance. A single dropped term of typical size exceeds the bound only for K < 1 / (8 u) = 2^21
#: (fp32 accumulation); the exact checks catch it at every K.
C_PROB = 8.0
#: Roundings an epilogue adds (bias add, activation, cast via an intermediate), in units of the
#: accumulator's roundoff times the magnitude of the result.
EPILOGUE_ROUNDINGS = 4.0
#: Relative error of an fp32 operand read as TF32 (10 mantissa bits kept: truncated, the worst
#: a tensor core may do), for workloads with ``precision="tf32"``.
TF32_ROUNDOFF = 2.0**-10
#: fp64 reference work per trial (flops) above which outputs are sampled.
REFERENCE_BUDGET = 2**30
#: Bytes of poisoned guard before and after every buffer (a multiple of DLPack's 64-byte alignment).
GUARD_BYTES = 4096
#: how much wider than a kernel's padded-output pitch the gate's second view's rows are: one
#: cache line of padding the kernel must leave as it was
LINE_BYTES = 128
DEFAULT_KINDS = ("normal", "normal", "large", "tiny", "mixed", "edge", "exact", "exact")
#: Dims whose indices are independent (output element i only reads index i): sampled.
_INDEPENDENT_DIMS = {("M", "N", "K"): ("M", "N"), ("B", "M", "N", "K"): ("B", "M", "N")}
_INDEPENDENT_BY_OP = {"conv2d_nhwc": ("N", "K")}


class VerificationError(AssertionError):
    """A kernel computed a wrong answer; the message says which check and by how much."""


@dataclass
class VerifyReport:
    """What the gate checked and what failed (empty ``failures`` means the kernel passed)."""

    workload: str
    checks: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    max_error_ratio: float = 0.0
    #: seconds by part of the gate: drawing inputs, running the kernel (transfers included),
    #: the fp64 reference and comparison, and each whole-call check
    seconds: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def spent(self, part: str, since: float) -> float:
        """Add the seconds since ``since`` to ``part``; the time now."""
        return spent(self.seconds, part, since)

    def to_json(self) -> dict:
        return {
            "workload": self.workload,
            "passed": self.passed,
            "checks": self.checks,
            "failures": self.failures,
            "max_error_ratio": self.max_error_ratio,
            "seconds": self.seconds,
        }


def spent(seconds: dict, part: str, since: float) -> float:
    """Add the ``time.perf_counter()`` seconds since ``since`` to ``seconds[part]`` (to 0.1 ms);
    the time now: the gate's parts, and the tuner's gate phase by step."""
    now = time.perf_counter()
    seconds[part] = round(seconds.get(part, 0.0) + now - since, 4)
    return now


def effective_roundoff(workload: Workload, device=None) -> float:
    """``u_eff``: the accumulator's unit roundoff, doubled off the CPU.

    GPU tensor cores align and accumulate with truncation (round toward zero), an error of up to
    one ulp per step instead of half an ulp (Fasi et al., PeerJ CS 2021). fp8 products with
    ``fast_accum`` are summed over all of K in :data:`FP8_ACC_BITS` bits there; promoted, in
    fp32 (:func:`tolerance` adds the short sums' own error).
    """
    u_acc = UNIT_ROUNDOFF[workload.acc_dtype]
    on_cpu = device is None or device.dlpack_device_type() == 1  # kDLCPU
    if on_cpu:
        return u_acc
    if workload.precision == "fast_accum":
        return FP8_ULP
    return 2.0 * u_acc


def tolerance(
    workload: Workload, inputs: list[np.ndarray], ref: np.ndarray, u_eff: float | None = None
) -> np.ndarray:
    """Elementwise error bound for ``workload`` on random zero-mean ``inputs``.

    ``C_PROB sqrt(K) u_eff sqrt(sum_k (a_ik b_kj)^2)`` (the accumulation: each of the K partial
    sums is rounded once, and on random inputs they are about ``sqrt(K)`` terms large), plus
    ``EPILOGUE_ROUNDINGS u_acc |op|(|inputs|)`` (bias add, activation), the operands' rounding
    for a ``precision="tf32"`` workload (:data:`TF32_ROUNDOFF`), for fp8 on a GPU the bias of
    its truncated short running sums (an ulp a wgmma of :data:`FP8_K_STEP` products), plus two
    roundings of the output dtype (a cast may round twice, via an intermediate) and an
    underflow floor. An epilogue expression carries the accumulation term through itself (its
    change between ``acc -+ e``).
    ``ref`` is the fp64 reference; ``inputs`` may be sampled sub-inputs (``workload`` then the
    sub-shape: the reduction is the same).
    """
    red = workload.opdef.reduction(workload.shape)
    u_acc = UNIT_ROUNDOFF[workload.acc_dtype]
    u_eff = u_acc if u_eff is None else u_eff
    u_out = UNIT_ROUNDOFF[workload.out_dtype]
    base, operands = workload.split_inputs([np.asarray(a, dtype=np.float64) for a in inputs])
    scale = C_PROB * math.sqrt(red) * u_eff
    tf32 = workload.precision == "tf32"
    carry = workload.opdef.carry
    # sqrt(sum_k (a_ik b_kj)^2) and the fp64 accumulator: each computed once, where needed
    terms = acc = None
    # fp8 on a GPU (u_eff above the CPU's): the tensor core's short running sum is cut toward
    # zero once a wgmma, a bias that adds up linearly over the steps of a sum, not like sqrt
    fp8_gpu = workload.dtype in FP8_DTYPES and u_eff > u_acc
    if carry is None or tf32 or fp8_gpu:
        terms = np.sqrt(workload.opdef.magnitude(workload.shape, [a * a for a in base]))
    if tf32 or workload.epilogue is not None:
        acc = workload.opdef.reference(workload.shape, base)
    if carry is not None:  # several accumulators, combined by the op itself
        bound = carry(workload.shape, base, scale)
    else:
        bound = scale * terms
    if fp8_gpu:  # at most an ulp of the running sum a step, the sum under `terms`; promoted:
        # the steps of one 128-product sum, whose errors cross K's sums with random signs
        promoted = C_PROB * FP8_PROMOTE_K / FP8_K_STEP
        steps = red / FP8_K_STEP if workload.precision == "fast_accum" else promoted
        bound = bound + steps * FP8_ULP * terms
    if tf32:
        # each product's operands cut to 10 mantissa bits: a spread like the accumulation's
        # (without its sqrt(K) growth) and, truncated, a bias of up to 2^-10 of the result
        bound = bound + C_PROB * 2 * TF32_ROUNDOFF * terms + TF32_ROUNDOFF * np.abs(acc)
    if workload.epilogue is not None:  # the accumulator's error, carried through the expression
        g = lambda x: workload.epilogue.evaluate(x, operands)  # noqa: E731
        at = g(acc)
        bound = np.maximum(np.abs(g(acc + bound) - at), np.abs(g(acc - bound) - at))
    bound += EPILOGUE_ROUNDINGS * u_acc * workload.magnitude(inputs)
    return bound + 2 * u_out * np.abs(ref) + TINY[workload.out_dtype]


def exact_inputs(
    workload: Workload, rng: np.random.Generator, sample: _Sample | None = None
) -> list[np.ndarray]:
    """Integer inputs whose products sum exactly in fp32 and in the output dtype.

    Values are in {-2, -1, 1, 2} (bias: {-2..2}); the first input is made sparse with a density
    such that ``sum_k |a_ik b_kj| <= EXACT_INT`` of the accumulator and of the output dtype for
    every compared element, so every partial sum, in any order, is an exact integer. The last
    K index (the last axis of the first input) and the first are always nonzero and the last row
    and column always compared; the rest is random, so a dropped range of K hits nonzero terms
    (where the output dtype allows fewer than K of them, ``M EXACT_INT / 4.5`` of the K indices
    are covered per trial; the random trials catch longer ranges there).
    """
    sample = sample or _Sample.full(workload)
    limit = min(EXACT_INT[workload.acc_dtype], EXACT_INT[workload.out_dtype]) // 2
    if workload.dtype in FP8_DTYPES:  # the tensor core's fp8 running sum
        limit = min(limit, 2**FP8_ACC_BITS // 2)
    degree = workload.opdef.degree
    if degree > 1:  # a product of accumulators is no integer: each sum is exact in fp32 only,
        # and the result is held to the roundings' bound; the product must stay finite in the
        # output dtype, so each sum is capped at the degree-th root of its largest value
        root = int(FINITE_OUT[workload.out_dtype] ** (1.0 / degree))
        limit = min(EXACT_INT[workload.acc_dtype], root) // 2
    red = max(1, workload.opdef.reduction(workload.shape))
    density = min(1.0, limit / (2.25 * red))  # E|a| E|b| = 1.5 * 1.5 for values {+-1, +-2}
    for _ in range(8):
        arrays = []
        for index, spec in enumerate(workload.inputs):
            values = small_nonzero_ints(rng, spec.shape)
            if index == 0 and density < 1.0:
                keep = rng.random(spec.shape, dtype=np.float32) < density
                keep[..., [0, -1]] = True  # the first and last K step: always nonzero
                values *= keep
            elif spec.name == "bias":
                values = rng.integers(-2, 3, size=spec.shape, dtype=np.int8)
            arrays.append(values)
        sampled = sample.inputs(arrays)
        mag = _exact_magnitude(sample.workload, sampled) ** (1.0 / degree)
        # and an epilogue's result (a scale, a division) stays finite in the output dtype
        finite = (
            workload.epilogue is None
            or float(np.max(sample.workload.magnitude(sampled), initial=0.0))
            <= FINITE_OUT[workload.out_dtype] / 2
        )
        if float(np.max(mag, initial=0.0)) <= 2 * limit - 4 and finite:
            return [cast(a, s.dtype) for a, s in zip(arrays, workload.inputs)]
        density /= 2
    raise VerificationError(f"{workload.name}: no exact integer inputs found (K={red})")


def verify(
    run: Callable,
    workload: Workload,
    device=None,
    *,
    kinds=DEFAULT_KINDS,
    seed: int | None = None,
    check_shapes: bool = True,
    out_pitch: int | None = None,
) -> VerifyReport:
    """Run the gate on ``run(*args)``, a TVM function taking inputs then output.

    Parameters
    ----------
    run : callable
        The kernel: ``run(*inputs, out)`` on ``tvm.runtime.Tensor`` arguments.
    workload : Workload
        What the kernel computes.
    device : tvm.runtime.Device, optional
        Where the tensors live (default CPU; CPU buffers are guarded, see the module doc).
    kinds : sequence of str
        One trial each: ``exact`` (integer inputs, exact comparison) or an input distribution of
        ``Workload.random_inputs`` (``normal``, ``large``, ``tiny``, ``mixed``, ``edge``).
    seed : int, optional
        Seed of the input generator; fresh from the OS when None (the default).
    check_shapes : bool
        Also check that arguments one off in any dimension are refused.
    out_pitch : int, optional
        The kernel also takes its output as a view of rows this many elements apart (the
        kernel function's ``autokernel.out_row_pitch``; loaders allocate such views): one more
        call writes such a view, which must hold the dense call's output bit for bit and leave
        the padding as it was.

    Returns
    -------
    VerifyReport
        Checks run and failures found (``passed`` when there are none).
    """
    import tvm

    device = device or tvm.cpu()
    guarded = device.dlpack_device_type() == 1  # kDLCPU
    rng = np.random.default_rng(secrets.randbits(64) if seed is None else seed)
    report = VerifyReport(workload.name)
    u_eff = effective_roundoff(workload, device)
    sample = _Sample.draw(workload, rng)
    if sample.strides:
        report.checks.append("sampled:" + ",".join(f"{d}/{g}" for d, g in sample.strides.items()))
    dense = None
    for kind, inputs in _drawn(workload, rng, sample, tuple(kinds), report):
        start = time.perf_counter()
        exact = kind == "exact"
        if isinstance(inputs, VerificationError):  # an epilogue whose result outgrows the
            # output dtype on any integer inputs: said in the report, the value kinds still run
            report.checks.append(f"exact: skipped ({inputs})")
            continue
        report.checks.append("exact" if exact else f"values:{kind}")
        got = _call(run, workload, device, inputs, guarded, report, kind)
        start = report.spent("run", start)
        if got is None:
            continue
        if dense is None and kind not in ("edge", "exact"):
            dense = (inputs, got)
        sub_inputs = sample.inputs(inputs)
        ref = sample.workload.reference(sub_inputs)
        got_s = sample.output(got).astype(np.float64)
        if exact:
            _compare_exact(workload, sample, sub_inputs, ref, got_s, report)
            report.spent("reference", start)
            continue
        bound = tolerance(sample.workload, sub_inputs, ref, u_eff)
        # past the output dtype's range the right answer is inf of the reference's sign (an
        # epilogue's scale can take a normal sum there): not an error
        overflow = np.isinf(got_s) & (np.sign(got_s) == np.sign(ref))
        overflow &= np.abs(ref) + bound >= OVERFLOW[workload.out_dtype]
        err = np.where(overflow, 0.0, np.abs(got_s - ref))
        ratios = err / bound
        ratio = float(np.max(ratios))
        report.max_error_ratio = max(report.max_error_ratio, ratio)
        if not ratio <= 1.0:
            where = np.unravel_index(int(np.argmax(ratios)), ratios.shape)
            report.failures.append(
                f"{kind}: error {ratio:.3g}x the bound; worst at {sample.where(where)}: "
                f"got {got_s[where]:.6g}, want {ref[where]:.6g}"
            )
        report.spent("reference", start)
    start = time.perf_counter()
    if dense is not None:
        _check_determinism(run, workload, device, dense, guarded, report)
        start = report.spent("determinism", start)
        if out_pitch is not None:
            _check_padded_output(run, workload, device, dense, out_pitch, report)
            start = report.spent("padded-output", start)
    if check_shapes:
        _check_shape_rejection(run, workload, device, report)
        report.spent("shape-rejection", start)
    return report


def _drawn(workload: Workload, rng, sample, kinds, report: VerifyReport):
    """``(kind, inputs)`` for each of ``kinds`` in order (inputs: the
    :class:`VerificationError` that says why an ``exact`` trial has none), the next kind's
    drawn on a thread while the caller runs and checks this one's (the gated LLaMA GEMM's
    draws took 10 of its gate's 15 s on 2 cores, with a kernel that only writes its output).
    One thread draws them all in turn, so a seed gives the same inputs as drawing each when it
    is needed; the seconds spent waiting for a draw are the report's ``inputs``."""

    def draw(kind: str):
        if kind != "exact":
            return workload.random_inputs(rng, kind)
        try:
            return exact_inputs(workload, rng, sample)
        except VerificationError as err:
            return err

    with ThreadPoolExecutor(max_workers=1) as pool:
        ahead = pool.submit(draw, kinds[0]) if kinds else None
        for i, kind in enumerate(kinds):
            start = time.perf_counter()
            inputs = ahead.result()
            ahead = pool.submit(draw, kinds[i + 1]) if i + 1 < len(kinds) else None
            report.spent("inputs", start)
            yield kind, inputs
            del inputs  # this frame's reference, before waiting on the next draw


def _call(run, workload, device, inputs, guarded, report, kind) -> np.ndarray | None:
    """Run the kernel once on NaN-poisoned output; the output (None after a failure)."""
    import tvm

    out_np = np_dtype(workload.out_dtype)
    poisoned = np.full(workload.output.shape, np.nan, dtype=out_np)
    if guarded:
        buffers = [_Guarded(a) for a in [*inputs, poisoned]]
        args = [b.tensor for b in buffers]
    else:
        args = [tvm.runtime.tensor(a, device) for a in [*inputs, poisoned]]
    run(*args)
    got = args[-1].numpy()
    if guarded:
        originals = [*inputs, None]  # the output may change, but not outside its bounds
        specs = [*workload.inputs, workload.output]
        damage = [(s.name, b.damage(o)) for s, b, o in zip(specs, buffers, originals)]
        damage = [f"{name}: {what}" for name, what in damage if what]
        if damage:
            report.failures.append(f"{kind}: " + "; ".join(damage) + " (out-of-bounds write?)")
            return None
    unwritten = np.isnan(got)  # numpy's and ml_dtypes' isnan: no fp32 copy of a big output
    if unwritten.any():
        first = tuple(int(i) for i in np.argwhere(unwritten)[0])
        report.failures.append(
            f"{kind}: {int(unwritten.sum())} of {got.size} outputs NaN (unwritten, or read out "
            f"of bounds?), first at {first}"
        )
        return None
    return got


def _exact_magnitude(workload: Workload, inputs: list) -> np.ndarray:
    """What :func:`exact_inputs` keeps inside the exact range: the accumulator (sum of
    ``|a b|``), which an epilogue reads in fp32 -- not the epilogue's result (a BatchNorm's
    ``(acc - mean) / std * gamma`` of one exact sum is no integer whatever its size, and
    bounding it left bf16 no inputs at all: every ResNet conv failed the gate). Without an
    epilogue it is :meth:`Workload.magnitude`."""
    base, _ = workload.split_inputs(inputs)
    return workload.opdef.magnitude(
        workload.shape, [np.abs(np.asarray(a, np.float64)) for a in base]
    )


def _compare_exact(workload, sample, inputs, ref, got, report) -> None:
    """Integral reference values must come out exactly; others (a GELU of an exact sum, or an
    integer past the output dtype's exact range, which an epilogue's scale can make) within
    the epilogue's roundings only, no accumulation error."""
    integral = (ref == np.round(ref)) & (np.abs(ref) <= EXACT_INT[workload.out_dtype])
    if workload.opdef.degree > 1:  # a product of sums: integral by chance (silu(40) == 40 in
        integral = ref == 0.0  # fp64) and beyond the output's exact range; only zeros are exact
    u_acc, u_out = UNIT_ROUNDOFF[workload.acc_dtype], UNIT_ROUNDOFF[workload.out_dtype]
    slack = (EPILOGUE_ROUNDINGS * u_acc) * sample.workload.magnitude(inputs)
    slack = np.where(integral, 0.0, slack + 2 * u_out * np.abs(ref) + TINY[workload.out_dtype])
    wrong = np.abs(got - ref) > slack
    if wrong.any():
        first = tuple(int(i) for i in np.argwhere(wrong)[0])
        report.failures.append(
            f"exact: {int(wrong.sum())} of {wrong.size} compared outputs differ from the exact "
            f"integer result; first at {sample.where(first)}: got {got[first]:.9g}, "
            f"want {ref[first]:.9g}"
        )


def _check_determinism(run, workload, device, dense, guarded, report) -> None:
    inputs, first = dense
    report.checks.append("determinism")
    scratch = VerifyReport(workload.name)
    for _ in range(2):
        again = _call(run, workload, device, inputs, guarded, scratch, "determinism")
        if again is None or not np.array_equal(again.view(np.uint8), first.view(np.uint8)):
            diff = "its output is invalid" if again is None else _bytes_diff(again, first)
            report.failures.append(f"determinism: a rerun on the same dense inputs: {diff}")
            return


def _check_padded_output(run, workload, device, dense, pitch, report) -> None:
    """The dense inputs again, the output a view of NaN-poisoned rows: ``pitch`` elements
    apart (the kernel's :data:`~autokernel_tvm.manifest.OUT_PITCH`, as loaders allocate), then
    one 128-byte line wider. Each view must equal the dense call's output bit for bit; the
    columns past N up to ``pitch`` are the kernel's scratch (a TMA store may write the rest of
    the box or granule a row ends in), and in the wider rows the columns from ``pitch`` on
    must still be NaN."""
    import torch
    import tvm

    from .torch.loader import torch_device
    from .workloads.dtypes import TORCH_DTYPES

    report.checks.append(f"padded-output:{pitch}")
    inputs, first = dense
    shape, n = workload.output.shape, workload.output.shape[-1]
    out_np = np_dtype(workload.out_dtype)
    bits = np.dtype(f"int{8 * out_np.itemsize}")  # torch takes signed ints from numpy
    want = np.ascontiguousarray(first).view(bits)
    for apart in (pitch, pitch + LINE_BYTES // out_np.itemsize):
        poisoned = np.full((*shape[:-1], apart), np.nan, dtype=out_np).view(bits)
        rows = torch.tensor(poisoned, device=torch_device(device))
        view = rows.view(TORCH_DTYPES[workload.out_dtype])[..., :n]
        run(*[tvm.runtime.tensor(a, device) for a in inputs], view)
        got = rows.cpu().numpy()
        visible = np.ascontiguousarray(got[..., :n])
        if not np.array_equal(visible, want):
            diff = _bytes_diff(visible, want)
            report.failures.append(f"padded-output: rows {apart} elements apart: {diff}")
            return
        if not np.array_equal(got[..., pitch:], poisoned[..., pitch:]):
            # where and what: a kernel's edge handling (TMA clipping, predicates) shows in it
            written = np.argwhere(got[..., pitch:] != poisoned[..., pitch:])
            at = tuple(int(i) for i in written[0])
            value = got[..., pitch:][at].view(out_np)
            report.failures.append(
                f"padded-output: rows {apart} elements apart: the padding past column {pitch} "
                f"was written: {len(written)} elements, first at {at[:-1]} column "
                f"{pitch + at[-1]} ({value}), last at "
                f"{tuple(int(i) for i in written[-1][:-1])} column {pitch + int(written[-1][-1])}"
            )
            return


def _bytes_diff(a: np.ndarray, b: np.ndarray) -> str:
    rows_a = a.reshape(a.shape[0] if a.ndim else 1, -1).view(np.uint8)
    rows_b = b.reshape(b.shape[0] if b.ndim else 1, -1).view(np.uint8)
    differ = int(np.sum(np.any(rows_a != rows_b, axis=1)))
    return f"{differ} of {rows_a.shape[0]} rows differ bitwise"


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
            # uninitialized: a kernel must refuse these before it reads or writes any element
            # (host zeros copied in took seconds per argument at the vocab shapes' sizes)
            args = [tvm.runtime.empty(shape, s.dtype, device) for shape, s in zip(shapes, specs)]
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


# ------------------------------------------------------------------------------------------
# Guarded CPU buffers


class _Guarded:
    """``array`` copied into the middle of a bigger, 64-byte aligned allocation whose guard
    bytes are 0xFF (NaN in every float dtype); ``tensor`` is a zero-copy TVM view of it."""

    def __init__(self, array: np.ndarray):
        import tvm

        array = np.ascontiguousarray(array)
        nbytes = array.nbytes
        raw = np.full(nbytes + 2 * GUARD_BYTES + 64, 0xFF, dtype=np.uint8)
        start = (-raw.ctypes.data) % 64  # DLPack import wants 64-byte aligned data
        self.raw = raw[start : start + nbytes + 2 * GUARD_BYTES]
        body = self.raw[GUARD_BYTES : GUARD_BYTES + nbytes]
        self.view = body.view(array.dtype).reshape(array.shape)
        self.view[...] = array
        if is_extension(array.dtype):  # bf16, fp8 (ml_dtypes): numpy's DLPack export refuses them
            bits = self.view.view(f"uint{8 * array.dtype.itemsize}")
            tensor = tvm.runtime.from_dlpack(bits)
            self.tensor = tensor._create_view(array.shape, str(array.dtype), 0)
        else:
            self.tensor = tvm.runtime.from_dlpack(self.view)

    def damage(self, original: np.ndarray | None) -> str:
        """What the kernel wrote where it must not ('' if nothing): the guards, or an input."""
        touched = int(np.count_nonzero(self.raw[:GUARD_BYTES] != 0xFF))
        touched += int(np.count_nonzero(self.raw[-GUARD_BYTES:] != 0xFF))
        if touched:
            return f"{touched} guard bytes around the buffer changed"
        if original is not None and not np.array_equal(
            self.view.view(np.uint8), np.ascontiguousarray(original).view(np.uint8)
        ):
            return "the input was modified"
        return ""


# ------------------------------------------------------------------------------------------
# Sampled reference


@dataclass
class _Sample:
    """Indices compared: per independent dim, sampled indices (absent: all of them)."""

    workload: Workload  # the sub-workload the sampled inputs form
    parent: Workload
    picks: dict  # dim name -> np.ndarray of indices
    strides: dict  # dim name -> block size g
    in_axes: list  # per input: {axis: dim name}
    out_axes: dict  # output axis -> dim name

    @classmethod
    def full(cls, workload: Workload) -> _Sample:
        return cls(workload, workload, {}, {}, [{} for _ in workload.inputs], {})

    @classmethod
    def draw(cls, workload: Workload, rng: np.random.Generator) -> _Sample:
        """Stratified samples of the independent dims within :data:`REFERENCE_BUDGET`."""
        dims = _independent_dims(workload)
        flops = float(workload.flops)
        if not dims or flops <= REFERENCE_BUDGET:
            return cls.full(workload)
        g = math.ceil((flops / REFERENCE_BUDGET) ** (1.0 / len(dims)))
        names = workload.opdef.dims
        shape = list(workload.shape)
        picks, strides, in_axes, out_axes = {}, {}, [{} for _ in workload.inputs], {}
        for dim in dims:
            pos = names.index(dim)
            size = shape[pos]
            if size <= 2 * g:
                continue
            starts = np.arange(0, size, g)
            offsets = rng.integers(0, g, size=len(starts))
            idx = np.unique(np.concatenate([[0, size - 1], np.minimum(starts + offsets, size - 1)]))
            picks[dim], strides[dim] = idx, g
            axes = _axes_of(workload, pos)
            for i, found in enumerate(axes[:-1]):
                in_axes[i].update({a: dim for a in found})
            out_axes.update({a: dim for a in axes[-1]})
            shape[pos] = len(idx)
        for i, axes in _operand_axes(workload, out_axes).items():
            in_axes[i].update(axes)
        sub = dataclasses.replace(workload, shape=tuple(shape))  # precision, epilogue kept
        return cls(sub, workload, picks, strides, in_axes, out_axes)

    def inputs(self, arrays):
        return [_take(a, axes, self.picks) for a, axes in zip(arrays, self.in_axes)]

    def output(self, array: np.ndarray) -> np.ndarray:
        return _take(array, self.out_axes, self.picks)

    def where(self, index: tuple) -> tuple:
        """The full-output index of a sampled-output index."""
        return tuple(
            int(self.picks[self.out_axes[a]][i]) if a in self.out_axes else int(i)
            for a, i in enumerate(index)
        )


def _independent_dims(workload: Workload) -> tuple:
    dims = workload.opdef.dims
    return _INDEPENDENT_BY_OP.get(workload.op) or _INDEPENDENT_DIMS.get(tuple(dims), ())


def _axes_of(workload: Workload, pos: int) -> list[list[int]]:
    """Per input and then the output: the axes whose size follows dim ``pos`` (probed by
    growing the dim by one)."""
    opdef = workload.opdef
    grown = list(workload.shape)
    grown[pos] += 1
    before = [s for _, s in opdef.arg_shapes(workload.shape)] + [opdef.out_shape(workload.shape)]
    after = [s for _, s in opdef.arg_shapes(tuple(grown))] + [opdef.out_shape(tuple(grown))]
    return [[a for a, (x, y) in enumerate(zip(b, c)) if x != y] for b, c in zip(before, after)]


def _operand_axes(workload: Workload, out_axes: dict) -> dict[int, dict]:
    """Per epilogue operand (by input position): ``{axis: dim}`` of the sampled output axes it
    follows -- all of them for a ``full`` operand, the last (``n``) or the row axis (``m``)."""
    if workload.epilogue is None:
        return {}
    first = len(workload.inputs) - len(workload.epilogue.operands)
    ndim = len(workload.opdef.out_shape(workload.shape))
    follows = {"full": None, "n": ndim - 1, "m": ndim - 2}
    found = {}
    for i, kind in enumerate(workload.epilogue.operands):
        axis = follows[kind]
        found[first + i] = (
            dict(out_axes) if axis is None else {0: out_axes[axis]} if axis in out_axes else {}
        )
    return found


def _take(array: np.ndarray, axes: dict, picks: dict) -> np.ndarray:
    for axis, dim in axes.items():
        array = np.take(array, picks[dim], axis=axis)
    return array


# ------------------------------------------------------------------------------------------
# compute-sanitizer

_DRIVER = r"""
import json, sys
import numpy as np
import tvm
from autokernel_tvm.workloads import Workload
path, name = sys.argv[1], sys.argv[2]
with open(path + ".json") as f:
    entry = next(k for k in json.load(f)["kernels"] if k["name"] == name)
workload = Workload.from_json(entry)
dev = tvm.cuda(0)
rng = np.random.default_rng(0)
args = [tvm.runtime.tensor(a, dev) for a in workload.random_inputs(rng)]
args.append(tvm.runtime.empty(workload.output.shape, workload.output.dtype, dev))
tvm.runtime.load_module(path)[name](*args)
dev.sync()
print("driver: ran", name)
"""


def sanitize(library: str, kernel: str | None = None, timeout_s: float = 600.0) -> dict:
    """Run ``compute-sanitizer`` (memcheck, racecheck) on one call of an exported CUDA kernel.

    Parameters
    ----------
    library : str
        An exported ``.so`` (its manifest beside it).
    kernel : str, optional
        The kernel's name in the manifest (default: the first).
    timeout_s : float
        Limit per tool run.

    Returns
    -------
    dict
        ``{"status": "skipped: ..."}`` where there is no ``compute-sanitizer`` or no GPU; else
        ``{"status": "passed"|"failed", "kernel": name, "memcheck": {...}, "racecheck": {...}}``
        with each tool's exit code, error count and last summary line (for the manifest).
    """
    tool = shutil.which("compute-sanitizer")
    if tool is None or not _has_cuda_gpu():
        return {"status": "skipped: no compute-sanitizer/GPU"}
    import json

    with open(library + ".json") as f:
        kernels = [k["name"] for k in json.load(f)["kernels"]]
    name = kernel or kernels[0]
    if name not in kernels:
        raise ValueError(f"kernel {name!r} is not in {library}.json; it holds {kernels}")
    result: dict = {"kernel": name}
    env = {**os.environ, "PYTHONPATH": _package_path()}
    for check in ("memcheck", "racecheck"):
        cmd = [tool, "--tool", check, "--error-exitcode", "99", sys.executable, "-c", _DRIVER]
        try:
            proc = subprocess.run(
                [*cmd, library, name], capture_output=True, text=True, timeout=timeout_s, env=env
            )
            text, code = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired:
            text, code = f"timed out after {timeout_s:.0f} s", -1
        summary = [ln for ln in text.splitlines() if "SUMMARY" in ln]
        errors = re.findall(r"(\d+) errors?", summary[-1]) if summary else []
        result[check] = {
            "returncode": code,
            "errors": int(errors[0]) if errors else None,
            "summary": (summary[-1] if summary else text.strip()[-300:]).strip(),
            "ran": "driver: ran" in text,
        }
    ok = all(result[c]["returncode"] == 0 and result[c]["ran"] for c in ("memcheck", "racecheck"))
    result["status"] = "passed" if ok else "failed"
    return result


def _has_cuda_gpu() -> bool:
    try:
        import tvm

        return bool(tvm.cuda(0).exist)
    except Exception:  # a TVM without CUDA support: no GPU for us
        return False


def _package_path() -> str:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])
