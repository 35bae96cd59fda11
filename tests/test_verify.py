# SPDX-License-Identifier: Apache-2.0
"""The gate must pass a correct kernel and catch each kind of wrong one."""

import numpy as np
import pytest
import tvm
from scipy.special import expit
from strided_kernels import strided_gemm  # shared with the measurer's tests
from tvm.script import tirx as T

from autokernel_tvm import verify as verify_lib
from autokernel_tvm.targets import make_target
from autokernel_tvm.verify import VerificationError, require, verify
from autokernel_tvm.workloads import Workload

W = Workload("gemm", (32, 32, 64), "float16")


def _build(func):
    return tvm.compile(tvm.IRModule({"main": func}), target=make_target("llvm"))["main"]


def test_correct_kernel_passes_all_checks():
    report = verify(_build(W.prim_func()), W)
    assert report.passed, report.failures
    assert {"determinism", "shape-rejection", "values:edge", "values:large"} <= set(report.checks)
    # where the gate's time went, by part (a rerun's largest share at LLaMA sizes)
    parts = {"inputs", "run", "reference", "determinism", "shape-rejection"}
    assert set(report.seconds) == parts and all(t >= 0 for t in report.seconds.values())
    assert report.to_json()["seconds"] == report.seconds


def test_inputs_drawn_ahead_are_those_drawn_in_turn():
    # the next kind's inputs are drawn on a thread while this one's run: the same values a
    # seed gave when each kind was drawn as it came, exact trials' included
    kinds = ("normal", "exact", "large", "mixed", "edge", "exact")
    rng = np.random.default_rng(7)
    sample = verify_lib._Sample.draw(W, rng)
    in_turn = [
        verify_lib.exact_inputs(W, rng, sample) if k == "exact" else W.random_inputs(rng, k)
        for k in kinds
    ]
    rng = np.random.default_rng(7)
    sample = verify_lib._Sample.draw(W, rng)
    report = verify_lib.VerifyReport(W.name)
    ahead = list(verify_lib._drawn(W, rng, sample, kinds, report))
    assert [k for k, _ in ahead] == list(kinds)
    for (_, got), want in zip(ahead, in_turn):
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
    assert report.seconds["inputs"] >= 0


@T.prim_func(s_tir=True)
def skips_last_row(
    a: T.Buffer((32, 64), "float16"),
    b: T.Buffer((64, 32), "float16"),
    c: T.Buffer((32, 32), "float32"),
):
    for i, j, k in T.grid(31, 32, 64):
        with T.sblock("C"):
            vi, vj, vk = T.axis.remap("SSR", [i, j, k])
            with T.init():
                c[vi, vj] = T.float32(0)
            c[vi, vj] = c[vi, vj] + T.Cast("float32", a[vi, vk]) * T.Cast("float32", b[vk, vj])


@T.prim_func(s_tir=True)
def fp16_accumulate(
    a: T.Buffer((32, 64), "float16"),
    b: T.Buffer((64, 32), "float16"),
    c: T.Buffer((32, 32), "float32"),
):
    acc = T.sblock_alloc_buffer((32, 32), "float16")
    for i, j, k in T.grid(32, 32, 64):
        with T.sblock("C"):
            vi, vj, vk = T.axis.remap("SSR", [i, j, k])
            with T.init():
                acc[vi, vj] = T.float16(0)
            acc[vi, vj] = acc[vi, vj] + a[vi, vk] * b[vk, vj]
    for i, j in T.grid(32, 32):
        with T.sblock("out"):
            vi, vj = T.axis.remap("SS", [i, j])
            c[vi, vj] = T.Cast("float32", acc[vi, vj])


@T.prim_func(s_tir=True)
def drops_last_k(
    a: T.Buffer((32, 64), "float16"),
    b: T.Buffer((64, 32), "float16"),
    c: T.Buffer((32, 32), "float32"),
):
    for i, j, k in T.grid(32, 32, 63):
        with T.sblock("C"):
            vi, vj, vk = T.axis.remap("SSR", [i, j, k])
            with T.init():
                c[vi, vj] = T.float32(0)
            c[vi, vj] = c[vi, vj] + T.Cast("float32", a[vi, vk]) * T.Cast("float32", b[vk, vj])


@pytest.mark.parametrize(
    "func, expect",
    [(skips_last_row, "NaN"), (fp16_accumulate, "the bound"), (drops_last_k, "edge")],
    ids=["unwritten-row", "fp16-accumulate", "drops-last-k"],
)
def test_wrong_kernels_fail(func, expect):
    report = verify(_build(func), W)
    assert not report.passed
    assert any(expect in f for f in report.failures), report.failures
    with pytest.raises(VerificationError):
        require(report)


def test_nondeterministic_kernel_fails():
    good = _build(W.prim_func())
    calls = {"n": 0}

    def flaky(*args):
        good(*args)
        calls["n"] += 1
        if calls["n"] > len(("normal",)):  # every run after the first perturbs one element
            out = args[-1].numpy()
            out[0, 0] = np.nextafter(out[0, 0], np.float32(np.inf))
            args[-1].copyfrom(out)

    report = verify(flaky, W, kinds=("normal",), check_shapes=False)
    assert any("determinism" in f for f in report.failures), report.failures


# -- mutation tests: numpy-simulated kernels (the gate takes any callable) ------------------------


def _sim(workload, defect=None, post=None):
    """A GEMM kernel ``run(a, b, out)`` in numpy fp32 (BLAS: a correct fp32 accumulation), with
    ``defect(a, b) -> (a, b)`` applied to the inputs and ``post(c) -> c`` to the fp32 result."""

    def run(*args):
        a, b = (x.numpy().astype(np.float32) for x in args[:2])
        if workload.op == "gemm_nt":
            b = b.T
        if defect is not None:
            a, b = defect(a.copy(), b.copy())
        c = a @ b
        if post is not None:
            c = post(c.copy())
        args[-1].copyfrom(c.astype(args[-1].numpy().dtype))

    return run


def _zero_k(lo, hi):
    def defect(a, b):
        a[:, lo:hi] = 0
        return a, b

    return defect


def _tile(i, j, how):
    def post(c):
        block = c[i : i + 64, j : j + 64]
        c[i : i + 64, j : j + 64] = {"zero": 0.0, "flip": -block, "drop": np.nan}[how]
        return c

    return post


def _failures(run, workload, kinds, **kw):
    report = verify(run, workload, kinds=kinds, check_shapes=False, **kw)
    return report.failures


HUGE_K = Workload("gemm", (4, 4, 524288), "float16")
HUGE_K_F16 = Workload("gemm_nt", (4, 4, 524288), "float16", "float16")


@pytest.mark.parametrize("workload", [HUGE_K, HUGE_K_F16], ids=["fp32-out", "fp16-out"])
def test_huge_k_correct_kernel_passes(workload):
    report = verify(_sim(workload), workload, kinds=("normal", "exact"), check_shapes=False)
    assert report.passed, report.failures
    assert report.max_error_ratio < 0.5  # a correct kernel is far from the bound


@pytest.mark.parametrize(
    "defect, post, kinds",
    [
        (_zero_k(0, 524288 - 1024), None, ("normal",)),  # reduces only the last 1024 of K
        (None, lambda c: c * 0.0, ("normal",)),  # all-zero output
        (None, lambda c: c * 0.0, ("exact",)),
        (_zero_k(200_000, 201_024), None, ("normal", "exact")),  # a dropped K range of 1024
        (_zero_k(524288 - 1, 524288), None, ("exact",)),  # the last K step dropped
        (_zero_k(0, 1), None, ("exact",)),  # the first K step dropped
    ],
    ids=["only-last-1024", "all-zero", "all-zero-exact", "k-range", "last-k", "first-k"],
)
@pytest.mark.parametrize("workload", [HUGE_K, HUGE_K_F16], ids=["fp32-out", "fp16-out"])
def test_huge_k_defects_fail(workload, defect, post, kinds):
    assert _failures(_sim(workload, defect, post), workload, kinds)


def test_bound_grows_like_sqrt_k():
    """At K = 524288 the bound is a few ulps of a typical output, not K^2 of them."""
    rng = np.random.default_rng(0)
    inputs = HUGE_K.random_inputs(rng, "normal")
    sub = [inputs[0][:2], inputs[1][:, :2]]
    small = Workload("gemm", (2, 2, 524288), "float16")
    ref = small.reference(sub)
    bound = verify_lib.tolerance(small, sub, ref)
    # An error of sqrt(K) (one dropped half of K) is >> the bound; rounding of K terms is not.
    assert np.all(bound < 2.0) and np.all(bound > 2.0**-24 * np.sqrt(524288) * 700)


ODD = Workload("gemm", (130, 70, 200), "float16")


@pytest.mark.parametrize(
    "post",
    [
        _tile(64, 0, "zero"),
        _tile(0, 64, "flip"),
        _tile(64, 0, "drop"),
        lambda c: np.concatenate([c[:-1], np.zeros_like(c[-1:])]),  # last row zero
        lambda c: np.concatenate([c[:, :-1], np.zeros_like(c[:, -1:])], axis=1),  # last column
        lambda c: np.concatenate([c[:, :-1], np.full_like(c[:, -1:], np.nan)], axis=1),
        lambda c: np.concatenate([c[:-1], np.full_like(c[-1:], np.nan)]),  # unwritten last row
    ],
    ids=["zero-tile", "flip-tile", "unwritten-tile", "zero-row", "zero-col", "nan-col", "nan-row"],
)
def test_odd_shape_tile_defects_fail(post):
    assert _failures(_sim(ODD, None, post), ODD, ("exact",))
    assert _failures(_sim(ODD, None, post), ODD, ("normal",))


def test_odd_shape_last_k_step_fails():
    run = _sim(ODD, _zero_k(199, 200))
    assert _failures(run, ODD, ("exact",))
    assert not _failures(_sim(ODD), ODD, ("exact", "normal", "edge"))


@pytest.mark.parametrize("how", ["zero", "flip", "drop"])
def test_sampled_reference_catches_any_tile(monkeypatch, how):
    """With sampling (every ~23rd row and column compared) a 64x64 tile still always fails."""
    monkeypatch.setattr(verify_lib, "REFERENCE_BUDGET", 2**18)
    workload = Workload("gemm_nt", (640, 576, 64), "float16")
    rng = np.random.default_rng(1)
    for _ in range(3):
        i, j = (int(rng.integers(0, s - 64)) for s in (640, 576))
        run = _sim(workload, None, _tile(i, j, how))
        report = verify(run, workload, kinds=("exact", "normal"), check_shapes=False)
        assert any(c.startswith("sampled:") for c in report.checks), report.checks
        assert len(report.failures) == 2, (i, j, report.failures)
    assert verify(_sim(workload), workload, kinds=("exact", "normal"), check_shapes=False).passed


def test_split_k_random_order_is_nondeterministic():
    """Partial sums over K chunks added in a random order: right values, different bits."""
    workload = Workload("gemm", (64, 64, 4096), "float32")
    rng = np.random.default_rng()

    def split_k(*args):
        a, b = (x.numpy() for x in args[:2])
        parts = [a[:, k : k + 256] @ b[k : k + 256] for k in range(0, 4096, 256)]
        total = np.zeros((64, 64), np.float32)
        for p in rng.permutation(len(parts)):
            total += parts[p]
        args[-1].copyfrom(total)

    report = verify(split_k, workload, kinds=("normal", "exact"), check_shapes=False)
    assert [f for f in report.failures if f.startswith("determinism")], report.failures
    assert len(report.failures) == 1  # the values themselves are within the bound


def test_kernel_writing_its_input_fails():
    def scribbles(*args):
        _sim(W)(*args)
        a = args[0].numpy()
        a[0, 0] += 1
        args[0].copyfrom(a)

    failures = _failures(scribbles, W, ("normal",))
    assert any("A: the input was modified" in f for f in failures), failures


@T.prim_func
def writes_past_the_end(
    a: T.Buffer((32, 64), "float16"),
    b: T.Buffer((64, 32), "float16"),
    c: T.Buffer((32, 32), "float32"),
):
    T.func_attr({"global_symbol": "main"})
    # One row past the end of c: the same memory the kernel would hit with a wrong tile bound.
    flat = T.decl_buffer((33 * 32,), "float32", data=c.data)
    for i, j in T.grid(32, 32):
        flat[i * 32 + j] = T.float32(0)
        for k in range(64):
            flat[i * 32 + j] = flat[i * 32 + j] + T.Cast("float32", a[i, k]) * T.Cast(
                "float32", b[k, j]
            )
    for j in range(32):
        flat[32 * 32 + j] = T.float32(1)


def test_out_of_bounds_write_fails():
    failures = _failures(_build(writes_past_the_end), W, ("normal",))
    assert any("out: 128 guard bytes" in f for f in failures), failures


@T.prim_func
def reads_past_the_end(
    a: T.Buffer((32, 64), "float16"),
    b: T.Buffer((64, 32), "float16"),
    c: T.Buffer((32, 32), "float32"),
):
    T.func_attr({"global_symbol": "main"})
    # The K loop runs one step too far: row 64 of b is past its end (a's is the next row).
    a_flat = T.decl_buffer((32 * 64 + 1,), "float16", data=a.data)
    b_flat = T.decl_buffer((65 * 32,), "float16", data=b.data)
    for i, j in T.grid(32, 32):
        c[i, j] = T.float32(0)
        for k in range(65):
            c[i, j] = c[i, j] + T.Cast("float32", a_flat[i * 64 + k]) * T.Cast(
                "float32", b_flat[k * 32 + j]
            )


def test_out_of_bounds_read_fails():
    failures = _failures(_build(reads_past_the_end), W, ("normal",))
    assert any("NaN" in f for f in failures), failures


def _short_gemm(m, n, k):
    """A (33, 47, 65) fp16 GEMM whose loops stop at ``m, n, k``."""

    @T.prim_func(s_tir=True)
    def short(
        a: T.Buffer((33, 65), "float16"),
        b: T.Buffer((65, 47), "float16"),
        c: T.Buffer((33, 47), "float32"),
    ):
        for i, j, r in T.grid(m, n, k):
            with T.sblock("C"):
                vi, vj, vk = T.axis.remap("SSR", [i, j, r])
                with T.init():
                    c[vi, vj] = T.float32(0)
                c[vi, vj] = c[vi, vj] + T.Cast("float32", a[vi, vk]) * T.Cast("float32", b[vk, vj])

    return short


@pytest.mark.parametrize(
    "m, n, k, expect",
    [(32, 47, 65, "NaN"), (33, 46, 65, "NaN"), (33, 47, 64, "exact"), (33, 47, 65, None)],
    ids=["last-row", "last-col", "last-k", "correct"],
)
def test_odd_shape_real_kernel_one_loop_short(m, n, k, expect):
    """Real TVM kernels of an odd shape, each with one loop bound one short."""
    odd = Workload("gemm", (33, 47, 65), "float16")
    failures = _failures(_build(_short_gemm(m, n, k)), odd, ("exact",))
    if expect is None:
        assert not failures
    else:
        assert any(expect in f for f in failures), failures


def test_sanitize_skips_without_tool_or_gpu(tmp_path):
    result = verify_lib.sanitize(str(tmp_path / "missing.so"))
    assert result == {"status": "skipped: no compute-sanitizer/GPU"}


def _sim_epilogue(workload, post=None):
    """``_sim`` with the workload's epilogue expression applied (fp32) to the accumulator."""
    n_ops = len(workload.epilogue.operands)

    def run(*args):
        a, b = (x.numpy().astype(np.float32) for x in args[:2])
        operands = [x.numpy().astype(np.float32) for x in args[2 : 2 + n_ops]]
        c = workload.epilogue.evaluate(a @ b.T, operands)
        if post is not None:
            c = post(c.copy())
        args[-1].copyfrom(c.astype(args[-1].numpy().dtype))

    return run


@pytest.mark.parametrize("broadcast", ["n", "m", "full"])
def test_sampled_reference_keeps_the_epilogue(monkeypatch, broadcast):
    """A sampled gate (large outputs) compares against the epilogue's result, with its operands
    sampled like the output: a correct fused kernel passes, one that skips the epilogue or reads
    the operand transposed fails."""
    from autokernel_tvm.workloads.epilogue import ACC, Epilogue, F, operand

    monkeypatch.setattr(verify_lib, "REFERENCE_BUDGET", 2**18)
    ep = Epilogue(F("silu", F("add", ACC, operand(0))), (broadcast,))
    workload = Workload("gemm_nt", (384, 384, 64), "float16", "float16", ep)
    kinds = ("normal",)
    report = verify(_sim_epilogue(workload), workload, kinds=kinds, check_shapes=False)
    assert any(c.startswith("sampled:") for c in report.checks), report.checks
    assert report.passed, report.failures
    skipped = _sim(workload)  # the bare GEMM
    assert _failures(lambda *a: skipped(a[0], a[1], a[-1]), workload, kinds)
    transposed = _sim_epilogue(workload)

    def wrong(*args):
        x = args[2].numpy()
        flipped = x.T.copy() if x.ndim == 2 else x[::-1].copy()
        transposed(args[0], args[1], tvm.runtime.tensor(flipped), args[-1])

    assert _failures(wrong, workload, kinds)


GATED = Workload("gemm_gated_nt", (96, 80, 256), "float16", "float16")


def _sim_gated(swap=False, act=None):
    """``silu(A @ Bg.T) * (A @ Bu.T)`` in fp32 numpy; ``swap``: gate and up exchanged;
    ``act``: another activation on the gate."""

    def run(a, b, out):
        a, b = a.numpy().astype(np.float32), b.numpy().astype(np.float32)
        g, u = a @ b[0].T, a @ b[1].T
        if swap:
            g, u = u, g
        gated = (act or (lambda x: x * expit(x)))(g) * u
        out.copyfrom(gated.astype(out.numpy().dtype))

    return run


def test_gated_gemm_gate_passes_the_right_kernel_and_catches_wrong_ones(monkeypatch):
    kinds = ("normal", "large", "mixed", "edge", "exact")
    assert verify(_sim_gated(), GATED, kinds=kinds, check_shapes=False).passed
    assert _failures(_sim_gated(swap=True), GATED, kinds)
    assert _failures(_sim_gated(act=lambda x: np.maximum(x, 0.0)), GATED, kinds)  # relu, not silu
    monkeypatch.setattr(verify_lib, "REFERENCE_BUDGET", 2**16)  # sampled rows and columns
    report = verify(_sim_gated(), GATED, kinds=kinds, check_shapes=False)
    assert report.passed and any(c.startswith("sampled:") for c in report.checks), report
    assert _failures(_sim_gated(swap=True), GATED, kinds)


@pytest.mark.parametrize("out_dtype", ["bfloat16", "float16", "float32"])
def test_gated_gemm_has_exact_inputs_in_every_output_dtype(out_dtype):
    """The gated result is no integer: its exact inputs need only fp32-exact sums (bf16 output
    left no density for them, and the GPU suite's bf16 gated case failed to start)."""
    workload = Workload("gemm_gated_nt", (64, 96, 512), "bfloat16", out_dtype)
    inputs = verify_lib.exact_inputs(workload, np.random.default_rng(0))
    assert np.count_nonzero(inputs[0]) > 0.01 * inputs[0].size
    # the product stays finite in the output dtype (fp16: -inf at 1000^3 on the H200)
    assert np.all(np.abs(workload.reference(inputs)) < verify_lib.FINITE_OUT[out_dtype])
    assert verify(_sim_gated(), workload, kinds=("exact", "normal"), check_shapes=False).passed


@pytest.mark.parametrize("shape", [(2048, 1024, 4096), (1000, 1000, 1000), (64, 96, 512)])
def test_gated_exact_inputs_keep_the_product_finite_in_fp16(shape):
    """Each sum capped at the root of fp16's largest value: at K=4096 the old bound left no
    density (the H200's gpu suite: "no exact integer inputs found (K=4096)")."""
    workload = Workload("gemm_gated_nt", shape, "float16", "float16")
    a, b = (
        x.astype(np.float64) for x in verify_lib.exact_inputs(workload, np.random.default_rng(1))
    )
    gate, up = a @ b[0].T, a @ b[1].T
    assert np.abs(gate * up).max() <= verify_lib.FINITE_OUT["float16"]
    assert np.count_nonzero(a[:, -1]) == a.shape[0]  # the last K step stays covered


def test_tf32_bound_holds_a_truncated_tf32_product_only_when_allowed():
    """An fp32 GEMM whose operands a tensor core read as TF32 (13 mantissa bits truncated) is
    inside the bound of a ``precision="tf32"`` workload and far outside the fp32 one."""
    from autokernel_tvm.verify import tolerance

    rng = np.random.default_rng(3)
    m, n, k = 64, 48, 1024
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)

    def tf32(x):
        return (x.view(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32)

    got = (tf32(a) @ tf32(b)).astype(np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    u_gpu = 2 * 2.0**-24
    for precision, inside in (("tf32", True), ("", False)):
        workload = Workload("gemm", (m, n, k), "float32", precision=precision)
        ratio = np.max(np.abs(got - ref) / tolerance(workload, [a, b], ref, u_gpu))
        assert (ratio < 0.5) if inside else (ratio > 5), (precision, ratio)


def test_sampled_reference_keeps_the_tf32_precision(monkeypatch):
    """A sampled gate (large outputs) holds a ``precision="tf32"`` kernel to the TF32 bound: the
    sub-workload kept only the op, shape, dtypes and epilogue, and a correct TF32 kernel failed
    the edge probe 61x over the fp32 bound (H200 2026-12-03, 1024 x 1024 x 1000)."""
    monkeypatch.setattr(verify_lib, "REFERENCE_BUDGET", 2**18)
    workload = Workload("gemm_nt", (384, 320, 200), "float32", precision="tf32")

    def tf32(x):
        return (x.view(np.uint32) & np.uint32(0xFFFFE000)).view(np.float32)

    run = _sim(workload, defect=lambda a, b: (tf32(a), tf32(b)))
    report = verify(run, workload, kinds=("normal", "edge", "mixed"), check_shapes=False)
    assert any(c.startswith("sampled:") for c in report.checks), report.checks
    assert report.passed, report.failures
    strict = Workload("gemm_nt", (384, 320, 200), "float32")
    assert _failures(run, strict, ("normal", "edge"))


def test_exact_inputs_size_the_accumulator_not_the_epilogue():
    """A BatchNorm folded into a bf16 conv's epilogue: the exact inputs keep the accumulator
    exact (its result, divided and scaled, is no integer anyway), so bf16 finds some -- sized by
    the epilogue's result it found none and every ResNet conv failed the gate (H200 2026-12-03).
    An epilogue that outgrows the output dtype on any integers skips the exact check, saying so,
    instead of failing every kernel."""
    from autokernel_tvm.builder import build_module
    from autokernel_tvm.targets import make_target
    from autokernel_tvm.workloads.epilogue import ACC, Epilogue, F, const, operand

    bn = Epilogue(
        F("relu", F("add", F("mul", F("div", F("sub", ACC, operand(0)), operand(1)), operand(2)),
                    operand(3))),
        ("n", "n", "n", "n"),
    )  # fmt: skip
    conv = Workload("conv2d_nhwc", (2, 8, 8, 64, 64, 3, 3, 1, 1), "bfloat16", "bfloat16", bn)
    report = verify(build_module(conv.ir_module(), make_target("llvm"))["main"], conv, seed=0,
                    check_shapes=False)  # fmt: skip
    assert report.passed and report.checks.count("exact") == 2, report
    huge = Workload("gemm_nt", (64, 64, 256), "float16", "float16",
                    Epilogue(F("mul", ACC, const(1e4))))  # fmt: skip
    report = verify(build_module(huge.ir_module(), make_target("llvm"))["main"], huge, seed=0,
                    kinds=("normal", "exact"), check_shapes=False)  # fmt: skip
    assert report.passed and any(c.startswith("exact: skipped") for c in report.checks), report


def test_inf_is_right_only_past_the_output_range():
    """A result past fp16's range is inf (what torch gives too); inf where the reference fits
    is still an error."""
    from autokernel_tvm.workloads.epilogue import ACC, Epilogue, F, const

    workload = Workload("gemm_nt", (64, 64, 64), "float16", "float16")
    scaled = _sim(workload, post=lambda c: c * 1e5)  # |c| ~ 8e5: inf in fp16
    times = Workload(
        "gemm_nt", (64, 64, 64), "float16", "float16", Epilogue(F("mul", ACC, const(1e5)))
    )
    assert not _failures(scaled, times, ("normal",))

    def one_inf(c):
        c[3, 5] = np.inf if c[3, 5] > 0 else -np.inf
        return c

    assert _failures(_sim(workload, post=one_inf), workload, ("normal",))


def _scaled_kernel(workload, *, scale_b=True, k_steps=None):
    """An llvm kernel of ``workload`` (gemm_scaled_nt), or one that forgets ``scale_b`` or
    sums only the first ``k_steps`` K values."""
    from tvm import te

    from autokernel_tvm.workloads.gemm import fp8_to_f32

    m, n, k = workload.shape
    ins, _ = workload.opdef.compute(workload.shape, workload.dtype, workload.out_dtype)
    a, b, sa, sb = ins
    r = te.reduce_axis((0, k_steps or k), name="k")
    dt = workload.dtype
    c = te.compute(
        (m, n), lambda i, j: te.sum(fp8_to_f32(a[i, r], dt) * fp8_to_f32(b[j, r], dt), axis=r)
    )
    scale = (lambda: sa[0] * sb[0]) if scale_b else (lambda: sa[0])
    out = te.compute((m, n), lambda i, j: (c[i, j] * scale()).astype(workload.out_dtype))
    return _build(te.create_prim_func([*ins, out]))


@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "float8_e5m2"])
def test_fp8_scaled_gemm_gate_passes_the_right_kernel_and_catches_wrong_ones(dtype):
    """fp8 inputs with fp32 per-tensor scales: the workload's own kernel passes every check;
    one that drops a scale (near 1 on random inputs, a power of two on exact ones) or the last
    K step fails."""
    w = Workload("gemm_scaled_nt", (67, 45, 131), dtype, "bfloat16")
    report = verify(_build(w.prim_func()), w)
    assert report.passed, report.failures
    assert report.checks.count("exact") == 2
    assert not verify(_scaled_kernel(w, scale_b=False), w).passed
    dropped = verify(_scaled_kernel(w, k_steps=130), w)
    assert any(f.startswith(("edge", "exact")) for f in dropped.failures), dropped.failures


def test_fp8_is_held_to_the_tensor_cores_fp8_accumulator_on_a_gpu():
    """On a GPU, fast-accumulated fp8 products are summed in ~14 bits (verify.FP8_ACC_BITS):
    the bound's roundoff is 2^-13 there (by default, and fp16: 2^-23, a truncating fp32 sum),
    and the exact inputs keep every integer sum inside 14 bits on any device."""

    class Gpu:
        def dlpack_device_type(self):
            return 2  # kDLCUDA

    fp8 = Workload("gemm_scaled_nt", (64, 64, 65536), "float8_e4m3fn", "float32")
    fast = Workload("gemm_scaled_nt", (64, 64, 65536), "float8_e4m3fn", precision="fast_accum")
    assert verify_lib.effective_roundoff(fast, Gpu()) == 2.0**-13
    assert verify_lib.effective_roundoff(fp8, Gpu()) == 2.0**-23
    assert verify_lib.effective_roundoff(fp8) == 2.0**-24  # the CPU's fp32 sum
    assert verify_lib.effective_roundoff(W, Gpu()) == 2.0**-23
    a, b, scale_a, scale_b = verify_lib.exact_inputs(fp8, np.random.default_rng(0))
    sums = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)).T
    assert 2**10 < sums.max() < 2**verify_lib.FP8_ACC_BITS
    assert {float(scale_a[0]), float(scale_b[0])} <= {-2.0, -1.0, 1.0, 2.0}


def _truncating_fp8_kernel(workload, bits: int, promote_every: int = 0):
    """A numpy stand-in for Hopper's fp8 wgmma: exact products, summed 32 at a time into an
    accumulator that keeps ``bits`` significant bits, cut toward zero after every step; with
    ``promote_every``, that accumulator restarts from zero every so many products and its sums
    are added in fp32 (the ``accum="promoted"`` kernels, cuBLASLt's default)."""

    def truncate(x):
        m, e = np.frexp(x)
        return np.ldexp(np.trunc(m * 2.0**bits) / 2.0**bits, e)

    def run(a, b, scale_a, scale_b, out):
        a64, b64 = a.numpy().astype(np.float64), b.numpy().astype(np.float64)
        total = np.zeros(workload.output.shape, dtype=np.float32)
        acc = np.zeros(workload.output.shape)
        for k in range(0, a64.shape[1], 32):
            acc = truncate(acc + a64[:, k : k + 32] @ b64[:, k : k + 32].T)
            if promote_every and (k + 32) % promote_every == 0:
                total, acc = total + acc.astype(np.float32), np.zeros_like(acc)
        total = total + acc.astype(np.float32)
        scale = np.float32(scale_a.numpy()[0]) * np.float32(scale_b.numpy()[0])
        out.copyfrom((total * scale).astype(out.numpy().dtype))

    return run


def _on_a_gpu(monkeypatch):
    """The gate's GPU bound on CPU tensors: ``effective_roundoff`` as for a CUDA device."""
    gpu = type("Gpu", (), {"dlpack_device_type": lambda self: 2})()
    real = verify_lib.effective_roundoff
    monkeypatch.setattr(
        verify_lib, "effective_roundoff", lambda workload, device=None: real(workload, gpu)
    )


@pytest.mark.parametrize("out_dtype, k", [("bfloat16", 8192), ("float32", 65536)])
def test_fp8_fast_accum_bound_holds_a_14_bit_accumulator_at_any_k(monkeypatch, out_dtype, k):
    """With ``fast_accum`` the fp8 bound on a GPU (2^-13 a step, and the truncations' bias
    growing with the K / 32 steps, not sqrt(K)) passes an accumulator that keeps 14 bits over
    all of K and cuts toward zero (2.5x under the bound up to K = 262144; 13 bits passes
    too), but not one that keeps 8 (a kernel summing in bf16). Without the bias term 14 bits
    came within 0.83x of the bound at K = 65536 and would fail past it."""
    _on_a_gpu(monkeypatch)
    w = Workload("gemm_scaled_nt", (24, 16, k), "float8_e4m3fn", out_dtype, None, "fast_accum")
    report = verify(_truncating_fp8_kernel(w, 14), w, check_shapes=False, seed=0)
    assert report.passed and report.max_error_ratio < 0.5, report.failures
    assert not verify(_truncating_fp8_kernel(w, 8), w, check_shapes=False, seed=0).passed


@pytest.mark.parametrize("k", [8192, 65536])
def test_fp8_default_bound_takes_promoted_sums_not_the_fast_accumulator(monkeypatch, k):
    """By default (torch._scaled_mm's accuracy) an fp8 kernel must sum each 128 products in the
    tensor core and those sums in fp32: that passes, the 14-bit accumulator over all of K
    (fast accumulation) fails from K = 8192 on."""
    _on_a_gpu(monkeypatch)
    w = Workload("gemm_scaled_nt", (24, 16, k), "float8_e4m3fn", "float32")
    promoted = verify(_truncating_fp8_kernel(w, 14, promote_every=128), w, check_shapes=False)
    assert promoted.passed, promoted.failures
    assert not verify(_truncating_fp8_kernel(w, 14), w, check_shapes=False, seed=0).passed


@pytest.mark.parametrize(
    "n, defect, write_col, expect",
    [
        (32, "", None, None),
        (32, "ignores-pitch", None, "rows 40 elements apart"),
        (32, "", 32, None),  # the kernel's scratch: past N, before its pitch
        (30, "", 39, None),
        (32, "", 40, "rows 72 elements apart: the padding past column 40 was written"),
    ],
    ids=["correct", "ignores-pitch", "writes-scratch", "n30-writes-scratch", "writes-padding"],
)
def test_padded_output_views_are_checked(n, defect, write_col, expect):
    """A kernel that also takes its output as a view of padded rows (loaders allocate them,
    40 elements apart here) is called once more on such a view and once on rows a line wider:
    each must hold what the plain output held, bit for bit; columns past N up to the pitch are
    the kernel's scratch, the padding past them must stay as it was; with plain rows the
    defects are invisible."""
    w = Workload("gemm", (32, n, 64), "float16")
    run = _build(strided_gemm(32, n, 64, "float16", defect=defect, write_col=write_col))
    assert verify(run, w, kinds=("normal",)).passed
    report = verify(run, w, kinds=("normal", "exact"), out_pitch=40)
    assert "padded-output:40" in report.checks
    if expect is None:
        assert report.passed, report.failures
    else:
        assert any(f.startswith("padded-output") and expect in f for f in report.failures), (
            report.failures
        )
