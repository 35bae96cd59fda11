# SPDX-License-Identifier: Apache-2.0
"""Epilogue expressions: value semantics, TE lowering vs fp64 reference (llvm, through the
correctness gate), and the cuda.wgmma register write-back built by nvcc for sm_90a."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from autokernel_tvm import verify as verify_lib
from autokernel_tvm.builder import build_module, cuda_source
from autokernel_tvm.targets import make_target
from autokernel_tvm.workloads import Workload, WorkloadError
from autokernel_tvm.workloads.epilogue import ACC, FUNCTIONS, Epilogue, Expr, F, const, operand

CHAIN = Epilogue(
    F(
        "add",
        F(
            "leaky_relu",
            F("sub", F("mul", F("add", ACC, operand(0)), const(2.0)), const(0.5)),
            value=0.1,
        ),
        operand(1),
    ),
    ("n", "full"),
)


def test_value_semantics_and_json():
    again = Epilogue.from_json(json.loads(json.dumps(CHAIN.to_json())))
    assert again == CHAIN and hash(again) == hash(CHAIN) and again.key == CHAIN.key
    assert str(CHAIN) == "(leaky_relu((((acc + x0) * 2.0) - 0.5), 0.1) + x1) with x0[n], x1[full]"
    wl = Workload("gemm_nt", (64, 32, 16), "float16", "float16", CHAIN)
    assert Workload.from_json(json.loads(json.dumps(wl.to_json()))) == wl
    assert wl.name.endswith("_ep" + CHAIN.key) and wl.name != Workload("gemm_nt", (64, 32, 16)).name
    assert [(a.name, a.shape) for a in wl.inputs[2:]] == [("x0", (32,)), ("x1", (64, 32))]


@pytest.mark.parametrize(
    "build, words",
    [
        (lambda: Expr("cube", (ACC,)), "unknown"),
        (lambda: Expr("add", (ACC,)), "takes 2"),
        (lambda: Epilogue(F("add", ACC, operand(1)), ("n", "n")), "uses operands \\[1\\]"),
        (lambda: Epilogue(ACC, ("diagonal",)), "broadcasts"),
        (lambda: Workload("gemm_bias_relu", (8, 8, 8), epilogue=Epilogue(ACC)), "own epilogue"),
    ],
)
def test_invalid_expressions_say_why(build, words):
    with pytest.raises(WorkloadError, match=words):
        build()


@pytest.mark.parametrize("fn", sorted(FUNCTIONS))
def test_every_function_lowers_like_its_reference_through_the_gate(fn):
    """TE lowering (fp32) == fp64 numpy within the gate's bound, for each function, on a
    batched GEMM with a row-broadcast operand (so every broadcast kind is exercised)."""
    arity = FUNCTIONS[fn][0]
    args = (
        (ACC, operand(0))[:arity]
        if fn != "div"
        else (ACC, F("add", F("relu", operand(0)), const(1.0)))
    )
    wl = Workload(
        "batch_gemm",
        (2, 16, 8, 12),
        epilogue=Epilogue(F(fn, *args, value=0.2), ("m",) if arity == 2 else ()),
    )
    exe = build_module(wl.ir_module(), make_target("llvm"))
    # exp of the 'large'/'mixed' accumulators overflows to inf in both readings (inf - inf)
    kinds = ("normal", "tiny", "edge") if fn == "exp" else verify_lib.DEFAULT_KINDS
    report = verify_lib.verify(exe["main"], wl, kinds=kinds, seed=1, check_shapes=False)
    assert report.passed, report.failures


def test_gate_draws_divisor_operands_away_from_zero():
    """A BatchNorm folded into the epilogue divides by an operand: the gate's edge probe (zeros
    but the last slice) and its scaled kinds must not hand it zeros, or the fp64 reference is
    nan/inf and no kernel can pass (the ResNet block's convs, H200 2026-12-03)."""
    bn = Epilogue(
        F(
            "relu",
            F(
                "add",
                F("mul", F("div", F("sub", ACC, operand(0)), operand(1)), operand(2)),
                operand(3),
            ),
        ),
        ("n", "n", "n", "n"),
    )
    assert bn.divisors() == {1} and CHAIN.divisors() == frozenset()
    wl = Workload("conv2d_nhwc", (1, 6, 6, 8, 16, 3, 3, 1, 1), epilogue=bn)
    rng = np.random.default_rng(3)
    for kind in ("normal", "large", "tiny", "mixed", "edge"):
        divisor = wl.random_inputs(rng, kind)[3]
        assert np.all(np.abs(divisor) >= 0.5), kind
    exe = build_module(wl.ir_module(), make_target("llvm"))
    report = verify_lib.verify(exe["main"], wl, seed=2, check_shapes=False)
    assert report.passed, report.failures


def test_gate_rejects_a_kernel_with_another_expression():
    built = Workload("gemm", (16, 8, 12), epilogue=Epilogue(F("gelu_tanh", ACC)))
    claimed = dataclasses.replace(built, epilogue=Epilogue(F("gelu", F("mul", ACC, const(1.01)))))
    exe = build_module(built.ir_module(), make_target("llvm"))
    assert not verify_lib.verify(exe["main"], claimed, seed=0, check_shapes=False).passed


def test_magnitude_bounds_the_fp32_rounding_of_the_chain():
    wl = Workload("gemm_nt", (32, 16, 64), epilogue=CHAIN)
    rng = np.random.default_rng(0)
    inputs = wl.random_inputs(rng)
    ref = wl.reference(inputs)
    f32 = [a.astype(np.float32) for a in inputs]
    acc = (f32[0] @ f32[1].T).astype(np.float32)
    out = CHAIN.evaluate(acc.astype(np.float64), f32[2:]).astype(np.float32)
    assert np.all(np.abs(out - ref) <= verify_lib.tolerance(wl, inputs, ref))


@pytest.mark.parametrize(
    "workload, block_n",
    [
        (Workload("gemm_nt", (1024, 256, 128), "float16", "float16", CHAIN), 256),
        (
            Workload(
                "batch_gemm",
                (2, 1024, 256, 128),
                "bfloat16",
                "bfloat16",
                Epilogue(F("silu", F("sub", ACC, operand(0))), ("m",)),
            ),
            256,
        ),
        (
            Workload(
                "conv2d_nhwc",
                (1, 32, 32, 64, 128, 3, 3, 1, 1),
                "float16",
                "float16",
                Epilogue(F("relu", F("add", F("add", ACC, operand(0)), operand(1))), ("n", "full")),
            ),
            128,
        ),
    ],
    ids=["gemm_nt-chain", "batch_gemm-rowwise-silu", "conv2d-bias-residual-relu"],
)
def test_wgmma_kernel_with_expression_epilogue_builds_with_nvcc(needs_nvcc, workload, block_n):
    from autokernel_tvm.families import get

    target = make_target("cuda", "sm_90a")
    wgmma = get("cuda.wgmma")
    params = wgmma.default.replace(block_n=block_n, raster=0)
    wgmma.check(params, workload, target)  # legal: raises with the reason otherwise
    mod = wgmma.candidate(params, workload, target).mod
    names = [p.name for p in mod["main"].params]
    operands = [f"x{i}" for i in range(len(workload.epilogue.operands))]
    assert names[2:] == [*operands, "C"]
    src = cuda_source(build_module(mod, target, check_nvcc=True))
    assert "wgmma.mma_async" in src
    assert all(f"{name}_ptr[" in src for name in operands)  # read in the write-back


def test_column_add_finds_the_bias_added_to_the_accumulator_itself():
    """``acc + x[n]`` (either order, anywhere in the chain) is what a kernel can start its
    accumulators from; the rest reads the sum as ``acc`` and evaluates the same."""
    index, rest = CHAIN.column_add()
    assert index == 0
    assert str(rest) == "(leaky_relu(((acc * 2.0) - 0.5), 0.1) + x1)"
    acc, bias, full = np.arange(6.0).reshape(2, 3), np.array([1.0, -2.0, 3.0]), np.ones((2, 3))
    started = CHAIN.evaluate(acc + bias, [bias, full], rest)
    np.testing.assert_allclose(started, CHAIN.evaluate(acc, [bias, full]))
    flipped = Epilogue(F("relu", F("add", operand(0), ACC)), ("n",)).column_add()
    assert flipped == (0, F("relu", ACC))
    for no in (
        Epilogue(F("add", ACC, operand(0)), ("m",)),  # a row vector: not per column
        Epilogue(F("add", ACC, operand(0)), ("full",)),
        Epilogue(F("add", F("mul", ACC, const(2.0)), operand(0)), ("n",)),  # 2 acc + x
        Epilogue(F("mul", F("add", ACC, operand(0)), ACC), ("n",)),  # acc read twice
    ):
        assert no.column_add() is None, no
