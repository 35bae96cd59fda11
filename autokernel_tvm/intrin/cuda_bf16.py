# SPDX-License-Identifier: Apache-2.0
"""bf16 x bf16 -> f32 tensor-core intrinsics (``mma.sync.m16n8k16`` + ``ldmatrix``) for TVM 0.27.

Read ``register`` and ``bf16_intrin_group`` first. Like upstream's f16 ``mma_ldmatrix_*`` /
``mma_f16f16f32*`` set, these are for hand schedules (``tvm.testing.tir.mma_schedule``):
``MultiLevelTilingTensorCore`` finds no tensorize mapping for their warp-layout descriptions (it
only drives the ``mma_sync_*`` m16n8k8 family), for f16 and bf16 alike.

Upstream ``tvm.s_tir.tensor_intrin.cuda`` is float16-only at k=16: ``get_ldmatrix_intrin``
asserts ``dtype == "float16"`` and ``get_mma_intrin`` has no ``bfloat16`` entry in its PTX type
table. bf16 uses exactly the f16 fragment layouts (ldmatrix moves ``.b16`` words and the PTX
fragments of m16n8k16 are the same for both), so each bf16 intrinsic is the upstream f16 one with
its element type swapped. TVM 0.27 has no Python IR mutator (no ``tirx.stmt_functor``) and
``PrimFunc.specialize`` ignores buffer parameters, so the swap goes through TVMScript: print the
f16 function, replace the dtype tokens, parse it back. The printer drops one thing that matters
(the dtype of the ldmatrix call), which is put back. Tested: a GEMM built from these intrinsics
gives the same CUDA kernel as upstream's f16 intrinsics, up to the type names.
"""

from __future__ import annotations

import re

from tvm.s_tir import TensorIntrin
from tvm.script import from_source
from tvm.tirx import PrimFunc

LOAD_SCOPES = ("shared", "shared.dyn")
STORE_SCOPES = ("global", "shared", "shared.dyn")

MMA_BF16 = "ak_mma_bf16bf16f32"
MMA_BF16_TRANS_B = "ak_mma_bf16bf16f32_trans_b"
# The one f32 store upstream lacks: to plain ``shared`` (it has ``global`` and ``shared.dyn``).
STORE_F32_SHARED = "ak_mma_store_16x16_f32_shared_simple_"

# PTX operand type names of ``T.ptx_legacy.mma`` for the 16-bit float types.
_PTX_TYPE = {"float16": "fp16", "bfloat16": "bf16"}
_LDMATRIX_CALL = "T.ptx_legacy.ldmatrix("
_LEFTOVER_F16 = re.compile(r"(?<![\w])(float16|fp16)\b")


def ldmatrix_name(matrix: str, trans: bool, scope: str) -> str:
    """Name of a bf16 ldmatrix intrinsic, e.g. ``ak_mma_ldmatrix_bf16_b_trans_dyn``.

    Parameters
    ----------
    matrix : str
        ``"a"`` or ``"b"``.
    trans : bool
        The shared tile is stored transposed (only ``b``: an N x K tile, as in ``nn.Linear``).
    scope : str
        ``"shared"`` or ``"shared.dyn"``.
    """
    if matrix not in ("a", "b") or (trans and matrix == "a") or scope not in LOAD_SCOPES:
        raise ValueError(f"no bf16 ldmatrix intrinsic for {matrix=}, {trans=}, {scope=}")
    suffix = ("_trans" if trans else "") + ("_dyn" if scope == "shared.dyn" else "")
    return f"ak_mma_ldmatrix_bf16_{matrix}{suffix}"


def retarget_f16_intrin(func: PrimFunc, dtype: str = "bfloat16") -> PrimFunc:
    """Return the f16 tensor-intrinsic function ``func`` with every f16 type replaced by ``dtype``.

    Parameters
    ----------
    func : PrimFunc
        A desc or impl function from ``tvm.s_tir.tensor_intrin.cuda`` built for float16.
    dtype : str
        ``"bfloat16"``, or ``"float16"`` to get ``func`` back (same script; used in tests).

    Returns
    -------
    PrimFunc
        The same function over ``dtype`` buffers and PTX operand types.
    """
    src = func.script()
    # Quoted tokens as the printer writes them: buffer and type_annotation dtypes, PTX types.
    src = src.replace('"float16"', f'"{dtype}"').replace('"fp16"', f'"{_PTX_TYPE[dtype]}"')
    if dtype != "float16" and _LEFTOVER_F16.search(src):
        raise RuntimeError(f"cannot retarget an f16 spelling to {dtype} in:\n{src}")
    return from_source(_restore_ldmatrix_dtype(src, dtype))


def _restore_ldmatrix_dtype(src: str, dtype: str) -> str:
    """Put back the ``dtype=`` of ``T.ptx_legacy.ldmatrix``, which the 0.27 printer drops.

    Parsed without it the call gets dtype int8, and codegen then replaces ``ldmatrix.trans`` by
    its scalar-loop fallback for int8 (every B load of a non-transposed GEMM).
    """
    start = src.find(_LDMATRIX_CALL)
    if start < 0:
        return src
    depth, end = 0, start + len(_LDMATRIX_CALL) - 1  # at the call's "("
    while True:  # to the matching ")"
        depth += {"(": 1, ")": -1}.get(src[end], 0)
        if depth == 0:
            break
        end += 1
    if "dtype=" in src[start:end]:  # a printer that keeps it
        return src
    return f'{src[:end]}, dtype="{dtype}"{src[end:]}'


def _definitions() -> dict[str, tuple[PrimFunc, PrimFunc]]:
    """All intrinsics this module registers, by name, as (desc, impl)."""
    # Importing upstream registers the f32 fill/store intrinsics and the index maps that
    # ``MmaBufferLayoutTransformer`` looks up; it takes ~15-20 s (TVMScript parsing).
    from tvm.s_tir.tensor_intrin import cuda as upstream

    defs = {}
    for scope in LOAD_SCOPES:
        for matrix, trans in (("a", False), ("b", False), ("b", True)):
            f16 = upstream.get_ldmatrix_intrin(16, "float16", matrix.upper(), trans, scope)
            defs[ldmatrix_name(matrix, trans, scope)] = tuple(map(retarget_f16_intrin, f16))
    for name, trans_b in ((MMA_BF16, False), (MMA_BF16_TRANS_B, True)):
        f16 = upstream.get_mma_intrin(16, "float16", "float16", "float32", False, trans_b)
        defs[name] = tuple(map(retarget_f16_intrin, f16))
    defs[STORE_F32_SHARED] = upstream.get_mma_store_intrin("float32", 8, "shared", False)
    return defs


def register() -> list[str]:
    """Register the ``ak_`` bf16 intrinsics with ``TensorIntrin``; later calls do nothing.

    Returns
    -------
    list of str
        The names of all intrinsics this module provides (registered now or before).
    """
    global _REGISTERED
    if _REGISTERED is None:
        # Per-name check too: a reloaded module must not re-register (TVM raises on duplicates).
        defs = _definitions()
        for name, (desc, impl) in defs.items():
            if TensorIntrin.get(name, allow_missing=True) is None:
                TensorIntrin.register(name, desc, impl)
        _REGISTERED = sorted(defs)
    return list(_REGISTERED)


_REGISTERED: list[str] | None = None


def bf16_intrin_group(load_scope: str, store_scope: str, trans_b: bool) -> dict[str, str]:
    """Intrinsic names for a bf16 x bf16 -> f32 GEMM, like upstream ``get_mma_intrin_group``.

    Registers the intrinsics if needed, so every returned name can be used at once.

    Parameters
    ----------
    load_scope : str
        Scope of the shared A/B tiles: ``"shared"`` or ``"shared.dyn"``.
    store_scope : str
        Where the f32 accumulator goes: ``"global"``, ``"shared"`` or ``"shared.dyn"``.
    trans_b : bool
        B is stored N x K (``C = A @ B.T``, as in ``nn.Linear``) instead of K x N.

    Returns
    -------
    dict of str to str
        Keys ``init``, ``load_a``, ``load_b``, ``compute``, ``store``. ``init`` and the global /
        ``shared.dyn`` stores are upstream's f32 intrinsics. Stores to shared memory use the
        element-wise ("simple") form, like upstream's default, so swizzling stays possible;
        upstream registers no element-wise store to global, so global uses ``mma_store``.
    """
    if load_scope not in LOAD_SCOPES or store_scope not in STORE_SCOPES:
        raise ValueError(f"unsupported scopes {load_scope=}, {store_scope=}")
    register()
    store = {
        "global": "mma_store_16x16_f32_global_",
        "shared": STORE_F32_SHARED,
        "shared.dyn": "mma_store_16x16_f32_shared_dyn_simple_",
    }[store_scope]
    return {
        "init": "mma_fill_16x16_f32",
        "load_a": ldmatrix_name("a", False, load_scope),
        "load_b": ldmatrix_name("b", trans_b, load_scope),
        "compute": MMA_BF16_TRANS_B if trans_b else MMA_BF16,
        "store": store,
    }
