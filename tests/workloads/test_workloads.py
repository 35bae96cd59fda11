# SPDX-License-Identifier: Apache-2.0
import numpy as np
import pytest
import tvm

from autokernel_tvm.targets import make_target
from autokernel_tvm.workloads import OPS, Workload, WorkloadError

CASES = [
    Workload("gemm", (32, 24, 16)),
    Workload("gemm_nt", (32, 24, 16), "float16"),
    Workload("gemm_tn", (32, 24, 16), "float16"),
    Workload("batch_gemm_tn", (2, 16, 8, 24), "bfloat16", "bfloat16"),
    Workload("batch_gemm", (2, 16, 8, 24), "bfloat16"),
    Workload("batch_gemm_nt", (3, 8, 16, 8), "float16", "float16"),
    Workload("gemm_bias", (16, 32, 8)),
    Workload("gemm_bias_relu", (16, 32, 8), "float16"),
    Workload("gemm_bias_gelu", (16, 32, 8), "bfloat16"),
    Workload("conv2d_nhwc", (2, 9, 9, 8, 16, 3, 3, 2, 1)),
    Workload("conv2d_nhwc", (1, 6, 6, 4, 8, 1, 1, 1, 0), "float16"),
    Workload("gemm_gated_nt", (16, 24, 32), "float16", "float16"),
    Workload("gemm_scaled_nt", (16, 24, 40), "float8_e4m3fn", "bfloat16"),
    Workload("gemm_scaled_nt", (16, 24, 40), "float8_e5m2", "float32"),
]


@pytest.mark.parametrize("workload", CASES, ids=lambda w: w.name)
def test_untuned_kernel_matches_fp64_reference(workload):
    exe = tvm.compile(workload.ir_module(), target=make_target("llvm"))
    rng = np.random.default_rng(1)
    inputs = workload.random_inputs(rng, "normal")
    out = tvm.runtime.tensor(np.zeros(workload.output.shape, dtype=_np(workload.out_dtype)))
    exe["main"](*[tvm.runtime.tensor(a) for a in inputs], out)
    ref = workload.reference(inputs)
    rel = np.linalg.norm(out.numpy().astype(np.float64) - ref) / np.linalg.norm(ref)
    assert rel < (1e-6 if workload.out_dtype == "float32" else 1e-2)


def _np(dtype):
    from autokernel_tvm.workloads import np_dtype

    return np_dtype(dtype)


def test_flops_and_names():
    w = Workload("gemm_nt", (4096, 4096, 4096), "float16")
    assert w.flops == 2 * 4096**3
    assert w.name == "gemm_nt_M4096_N4096_K4096_float16"
    assert [a.shape for a in w.inputs] == [(4096, 4096), (4096, 4096)]
    assert w.output.dtype == "float32"
    conv = Workload("conv2d_nhwc", (1, 56, 56, 64, 64, 3, 3, 1, 1))
    assert conv.output.shape == (1, 56, 56, 64)
    assert conv.flops == 2 * 56 * 56 * 64 * 64 * 9
    assert Workload.from_json(conv.to_json()) == conv


def test_every_op_has_a_case():
    assert {w.op for w in CASES} == set(OPS)


@pytest.mark.parametrize(
    "args, match",
    [
        (("matmul", (4, 4, 4)), "unknown op"),
        (("gemm", (4, 4)), "takes shape M,N,K"),
        (("gemm", (4, 0, 4)), "N must be positive"),
        (("gemm", (4, 4, 4), "int4"), "dtype must be one of"),
        (("gemm", (4, 4, 4), "float8_e4m3fn"), "float8_e4m3fn inputs: op gemm_scaled_nt"),
        (("gemm_scaled_nt", (4, 4, 4), "float16"), "takes inputs"),
        (("gemm_scaled_nt", (4, 4, 4), "float8_e5m2", "float8_e5m2"), "out_dtype must be"),
    ],
)
def test_bad_workloads_are_rejected_with_reason(args, match):
    with pytest.raises(WorkloadError, match=match):
        Workload(*args)


def test_input_kinds_are_fresh_and_distinct():
    w = Workload("gemm", (16, 16, 64), "float16")
    rng = np.random.default_rng(0)
    a1 = w.random_inputs(rng, "normal")[0]
    a2 = w.random_inputs(rng, "normal")[0]
    assert not np.array_equal(a1, a2)
    large = w.random_inputs(rng, "large")[0].astype(np.float64)
    assert np.abs(large).max() > 10 * np.abs(a1.astype(np.float64)).max()
    edge = w.random_inputs(rng, "edge")[0]
    assert np.count_nonzero(edge[:-1, :-1]) == 0 and np.count_nonzero(edge[-1]) > 0


def test_tf32_precision_is_an_fp32_opt_in_named_and_serialized():
    plain = Workload("gemm", (64, 32, 16), "float32")
    tf32 = Workload("gemm", (64, 32, 16), "float32", precision="tf32")
    assert tf32.name == plain.name.replace("float32", "float32_tf32") and tf32 != plain
    assert Workload.from_json(tf32.to_json()) == tf32
    assert "precision" not in plain.to_json()  # records of earlier runs read back unchanged
    with pytest.raises(WorkloadError, match="float32 inputs"):
        Workload("gemm", (64, 32, 16), "float16", precision="tf32")
    with pytest.raises(WorkloadError, match="precision must be"):
        Workload("gemm", (64, 32, 16), "float32", precision="fp16")


def test_large_draws_are_chunked_the_same_whatever_the_thread_count(monkeypatch):
    """Inputs past one chunk are filled by threads from child generators: the values a seed
    gives do not depend on the number of threads, each chunk is fresh (a kernel that read the
    wrong tile must not see the same values), and they are standard normal."""
    import numpy as np

    from autokernel_tvm.workloads import values

    monkeypatch.setattr(values, "CHUNK", 1 << 12)
    shape = (37, 1000)  # 37000 elements: 10 chunks, the last a partial one
    monkeypatch.setattr(values.os, "cpu_count", lambda: 1)
    one = values.standard_normal(np.random.default_rng(5), shape)
    monkeypatch.setattr(values.os, "cpu_count", lambda: 8)
    many = values.standard_normal(np.random.default_rng(5), shape)
    assert one.dtype == np.float32 and np.array_equal(one, many)
    flat = one.reshape(-1)
    assert not np.array_equal(flat[: 1 << 12], flat[1 << 12 : 2 << 12])
    assert abs(float(flat.mean())) < 0.03 and abs(float(flat.std()) - 1.0) < 0.03
    assert not np.array_equal(one, values.standard_normal(np.random.default_rng(6), shape))
    # the gate's exact integer inputs the same way: {-2, -1, 1, 2}, uniformly
    ints = values.small_nonzero_ints(np.random.default_rng(5), shape)
    monkeypatch.setattr(values.os, "cpu_count", lambda: 1)
    assert np.array_equal(ints, values.small_nonzero_ints(np.random.default_rng(5), shape))
    counts = np.unique(ints, return_counts=True)
    assert counts[0].tolist() == [-2, -1, 1, 2] and counts[1].min() > 0.23 * ints.size
    flat = ints.reshape(-1)
    assert not np.array_equal(flat[: 1 << 12], flat[1 << 12 : 2 << 12])


@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "float8_e5m2"])
def test_fp8_decode_is_exact_for_every_bit_pattern(dtype):
    """The scaled GEMM reads fp8 through its own decode (TVM 0.27's LLVM cast reads zero and
    subnormals wrong): all 256 values, signed zeros, subnormals, e5m2's inf and NaNs."""
    from tvm import te

    from autokernel_tvm.workloads.gemm import fp8_to_f32

    x = te.placeholder((256,), dtype, name="x")
    y = te.compute((256,), lambda i: fp8_to_f32(x[i], dtype), name="y")
    exe = tvm.compile(tvm.IRModule({"main": te.create_prim_func([x, y])}), target="llvm")
    bits = np.arange(256, dtype=np.uint8).view(_np(dtype))
    out = tvm.runtime.empty((256,), "float32")
    exe["main"](tvm.runtime.tensor(bits), out)
    want = bits.astype(np.float32)
    got = out.numpy()
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "float8_e5m2"])
def test_fp8_inputs_stay_finite_and_scales_near_one(dtype):
    """Every input kind stays inside fp8's range (e4m3fn rounds past 448 to NaN), ``tiny``
    is not flushed to zero, and the per-tensor scales are positive fp32 near 1."""
    w = Workload("gemm_scaled_nt", (64, 32, 128), dtype, "bfloat16")
    assert [a.dtype for a in w.inputs] == [dtype, dtype, "float32", "float32"]
    assert Workload.from_json(w.to_json()) == w
    rng = np.random.default_rng(0)
    for kind in ("normal", "large", "tiny", "mixed", "edge"):
        a, b, scale_a, scale_b = w.random_inputs(rng, kind)
        values = np.concatenate([a.astype(np.float32).ravel(), b.astype(np.float32).ravel()])
        assert np.isfinite(values).all(), kind
        assert np.count_nonzero(values) > (2 if kind == "edge" else values.size // 2), kind
        for scale in (scale_a, scale_b):
            assert scale.dtype == np.float32 and 0.5 <= scale[0] <= 2.0, kind
    with pytest.raises(WorkloadError, match="no epilogue"):
        from autokernel_tvm.workloads.epilogue import ACC, Epilogue, F

        Workload("gemm_scaled_nt", (4, 4, 4), dtype, epilogue=Epilogue(F("relu", ACC), ()))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float8_e4m3fn"])
def test_threaded_cast_rounds_like_astype(dtype):
    """values.cast rounds big draws in chunks on threads: bit for bit what one astype gives
    (fp8 after clipping to its range, where astype would give NaN)."""
    from autokernel_tvm.workloads import np_dtype, values

    a = values.standard_normal(np.random.default_rng(3), (2 * values.CHUNK + 5,)) * 300
    got = values.cast(a, dtype)
    want = (
        np.clip(a, -448, 448).astype(np_dtype(dtype))
        if "float8" in dtype
        else a.astype(np_dtype(dtype))
    )
    assert got.dtype == np_dtype(dtype)
    assert np.array_equal(got.view(np.uint8), want.view(np.uint8))
