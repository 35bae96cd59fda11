# SPDX-License-Identifier: Apache-2.0
"""``torch.export`` -> Relax with the dtypes PyTorch computes in (fp16/bf16 models import).

TVM 0.27's torch importer gives every matmul, linear and convolution ``out_dtype="float32"``
whatever the input dtype, and then adds the (fp16/bf16) bias to that fp32 result, so a biased
``nn.Linear`` or ``nn.Conv2d`` in fp16 fails "Binary operators must have the same datatype"; an
unbiased one silently turns the rest of the graph into fp32, where Python scalars (``x * 2.0``)
and residual adds then meet fp16 tensors (TVM-0.27-NOTES §7 item 18).

The fix keeps what PyTorch does on tensor cores: accumulate in fp32, add the bias to the fp32
accumulator, round once to the op's dtype. :data:`CUSTOM_CONVERTERS` wraps the importer's own
converters of the compute-heavy ops (passed through ``from_exported_program``'s
``custom_convert_map``): the bias operand is promoted to fp32 for the stock converter, and the
result is cast to the dtype torch.export recorded for the node (``node.meta["val"]``). Every
other op then sees the dtype the PyTorch graph has, so scalars become constants of that dtype.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from tvm import relax

#: aten op -> index of its additive operand (bias), or None.
ACCUMULATING_OPS = {
    "addmm.default": 0,
    "baddbmm.default": 0,
    "linear.default": 2,
    "mm.default": None,
    "bmm.default": None,
    "matmul.default": None,
    "conv1d.default": 2,
    "conv2d.default": 2,
    "conv3d.default": 2,
    "convolution.default": 2,
}
LOW_PRECISION = ("float16", "bfloat16")


def node_dtype(node) -> str | None:
    """The TVM dtype name torch.export recorded for ``node``'s value (None if not a tensor)."""
    value = node.meta.get("val") if hasattr(node, "meta") else None
    dtype = getattr(value, "dtype", None)
    return str(dtype).removeprefix("torch.") if dtype is not None else None


def _stock_in_float32(node, importer, name: str, args: list):
    """The importer's own converter of ``name`` on ``node``, with the values of ``args`` (fx
    nodes of ``node``'s operands) cast to fp32 for the call; restored after, so their other
    readers keep torch's dtype."""
    env, bb = importer.env, importer.block_builder
    saved = {a: env[a] for a in args}
    for a in args:
        env[a] = bb.emit(relax.op.astype(saved[a], "float32"))
    try:
        return importer.create_convert_map()[name](node)
    finally:
        env.update(saved)


def _rounded(bb, value, want: str | None):
    """``value`` cast to ``want`` where it is a tensor of another dtype."""
    if want and _dtype_of(value) not in (want, None):
        return bb.emit(relax.op.astype(value, want))
    return value


def _dtype_of(expr) -> str | None:
    ty = getattr(expr, "ty", None)
    return str(ty.dtype) if isinstance(ty, relax.TensorType) else None


def _accumulate_then_round(name: str, bias_index: int | None) -> Callable:
    def convert(node, importer):
        want = node_dtype(node)
        if want not in LOW_PRECISION:
            return importer.create_convert_map()[name](node)
        env = importer.env
        bias = node.args[bias_index] if bias_index is not None else None
        kept = bias is None or bias not in env or env[bias].ty.dtype == "float32"
        out = _stock_in_float32(node, importer, name, [] if kept else [bias])
        return _rounded(importer.block_builder, out, want)

    convert.__name__ = f"accumulate_then_round_{name.replace('.', '_')}"
    return convert


#: aten normalizations computed in fp32 and rounded back for inputs of these dtypes, as PyTorch
#: computes a low-precision norm's statistics in fp32. TVM 0.27 builds layer, group and
#: instance norm for fp32 and fp16 only ("layer_norm: only support float32 and float16 for
#: now" at legalization; group_norm's import fails): a bf16 model with a LayerNorm ran eagerly
#: whole. Its batch_norm legalizes fp16/bf16 into an fp32 output while the graph says fp16: the
#: model returned fp32 tensors (TVM-0.27-NOTES section 7).
FP32_NORMS = {
    "layer_norm.default": ("bfloat16",),
    "native_layer_norm.default": ("bfloat16",),
    "group_norm.default": ("bfloat16",),
    "native_group_norm.default": ("bfloat16",),
    "instance_norm.default": ("bfloat16",),
    # instance_norm, decomposed: Relax's instance_norm over one image of N x C channels
    "_native_batch_norm_legit.no_stats": ("bfloat16",),
    "batch_norm.default": LOW_PRECISION,
    "_native_batch_norm_legit_no_training.default": LOW_PRECISION,
    "_native_batch_norm_legit_functional.default": LOW_PRECISION,
    "_native_batch_norm_legit.default": LOW_PRECISION,
}


def _value_dtypes(node) -> list:
    """The TVM dtype names of the tensor(s) torch.export recorded for ``node``."""
    value = node.meta.get("val") if hasattr(node, "meta") else None
    values = value if isinstance(value, (tuple, list)) else [value]
    return [str(v.dtype).removeprefix("torch.") if hasattr(v, "dtype") else None for v in values]


def _in_float32(name: str, dtypes: tuple) -> Callable:
    def convert(node, importer):
        env, bb = importer.env, importer.block_builder
        low = [a for a in node.args if a in env and _dtype_of(env[a]) in dtypes]
        if not low:
            return importer.create_convert_map()[name](node)
        out = _stock_in_float32(node, importer, name, low)
        wants = _value_dtypes(node)
        if isinstance(out.ty, relax.TupleType):
            items = [bb.emit(relax.TupleGetItem(out, i)) for i in range(len(out.ty.fields))]
            wants += [None] * (len(items) - len(wants))
            return bb.emit(relax.Tuple([_rounded(bb, x, w) for x, w in zip(items, wants)]))
        return _rounded(bb, out, wants[0])

    convert.__name__ = f"in_float32_{name.replace('.', '_')}"
    return convert


#: ``custom_convert_map`` for ``from_exported_program``: see the module docstring.
CUSTOM_CONVERTERS = {
    **{name: _accumulate_then_round(name, index) for name, index in ACCUMULATING_OPS.items()},
    **{name: _in_float32(name, dtypes) for name, dtypes in FP32_NORMS.items()},
}


#: the message of the deprecation warning TVM's importer triggers in torch (a regex)
DEPRECATED_PYTREE = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


def attention(
    query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False
):
    """``F.scaled_dot_product_attention`` as the GEMMs and softmax a fused kernel runs.

    torch.export keeps the op whole, and ``run_decompositions`` then picks its implementation by
    device: on a GPU a fused kernel op (``_scaled_dot_product_flash_attention``, ``_cudnn_``,
    ``_efficient_``) that has no decomposition and that TVM's importer does not know, so every
    model with attention ran eagerly there; on a CPU the math form in fp32 (fp16 inputs upcast:
    both GEMMs fp32). This form is the same on every device and rounds like a flash kernel:
    scores of fp16/bf16 inputs summed in fp32 (a GEMM of upcast operands, which the dispatch
    serves in the input dtype), softmax in fp32, the probabilities rounded to the input dtype
    for ``P @ V`` (fp32 accumulation, one rounding). Rows a mask leaves empty are zeros, as
    torch's math form returns them.
    """
    import math

    import torch

    torch._check(dropout_p == 0.0, lambda: "attention: dropout needs training mode (p must be 0)")
    if scale is None:
        scale = 1.0 / math.sqrt(query.size(-1))
    if enable_gqa and key.size(-3) != query.size(-3):
        repeats = query.size(-3) // key.size(-3)
        key = key.repeat_interleave(repeats, dim=-3)
        value = value.repeat_interleave(repeats, dim=-3)
    scores = torch.matmul(query.float(), key.float().transpose(-2, -1)) * scale
    rows, cols = query.size(-2), key.size(-2)
    if is_causal:
        keep = torch.ones(rows, cols, dtype=torch.bool, device=query.device).tril()
        scores = scores.masked_fill(keep.logical_not(), float("-inf"))
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        scores = scores.masked_fill(attn_mask.logical_not(), float("-inf"))
    elif attn_mask is not None:
        scores = scores + attn_mask.float()
    probs = torch.softmax(scores, dim=-1)
    if attn_mask is not None:  # (a causal mask keeps each row's first key: never empty)
        empty = (scores == float("-inf")).all(dim=-1, keepdim=True)
        probs = probs.masked_fill(empty, 0.0)
    return torch.matmul(probs.to(value.dtype), value)


def decompositions() -> dict:
    """torch.export's default decompositions, with attention as :func:`attention`."""
    import torch

    table = torch.export.default_decompositions()
    table[torch.ops.aten.scaled_dot_product_attention.default] = attention
    return table


def from_exported_program(program, **kwargs):
    """TVM's ``from_exported_program`` with :data:`CUSTOM_CONVERTERS` (fp16/bf16-correct), over
    the program decomposed by :func:`decompositions` (attention imports on every device)."""
    from tvm.relax.frontend.torch import from_exported_program as stock_import

    custom = {**CUSTOM_CONVERTERS, **kwargs.pop("custom_convert_map", {})}
    with warnings.catch_warnings():
        # TVM 0.27's importer reads torch's pytree specs through an API torch 2.13 deprecates:
        # a FutureWarning on every model, printed to the user's console, about TVM's code
        warnings.filterwarnings("ignore", message=DEPRECATED_PYTREE, category=FutureWarning)
        if kwargs.pop("run_ep_decomposition", True):
            program = program.run_decompositions(decompositions())
        kwargs["run_ep_decomposition"] = False
        return stock_import(program, custom_convert_map=custom, **kwargs)
