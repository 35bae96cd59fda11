# SPDX-License-Identifier: Apache-2.0
"""Kernel dispatch: each matmul/conv2d of a Relax model, with the elementwise chain after it,
becomes one call into the kernel the tuner found for exactly that workload and epilogue.

Read first: :func:`dispatch_kernels` (the pass), then :func:`plan_function` (what matches and
why not). The pass runs on the imported module, before legalization:

1. every ``R.matmul`` / ``R.nn.conv2d`` is a candidate; the elementwise ops that follow it
   (add/sub/mul/div/max/min with constants or broadcast tensors, ReLU, LeakyReLU, GELU erf and
   tanh, SiLU, sigmoid, tanh, exp, casts) are absorbed as long as nothing else reads the values
   in between, and become an :class:`~autokernel_tvm.workloads.epilogue.Epilogue`; a
   non-batched GEMM's chain reads through reshapes of its rows (a Linear on ``[B, S, H]``
   imports as a GEMM over ``B * S`` rows between two reshapes), its broadcasts read against
   each value's shape;
2. the match is a :class:`~autokernel_tvm.workloads.Workload` (``gemm``, ``gemm_nt`` when the
   right operand is a transposed weight, so ``nn.Linear``'s ``[N, K]`` weight is read as it is
   stored; ``gemm_tn`` when the left operand is transposed, read as stored too where a
   generative family takes it (16-bit wgmma; else the transpose stays, before a ``gemm``);
   ``batch_gemm[_nt|_tn]``, a batch of one or a weight broadcast to every batch read as a
   GEMM over the rows, ``conv2d_nhwc``), tuned by ``Tuner.tune`` (the generative
   space, whole ``cuda.wgmma`` kernels included, and the gate of :mod:`~autokernel_tvm.verify`);
3. the chain's last binding becomes ``R.call_tir`` of the scheduled PrimFunc (added to the
   module, marked scheduled and opaque so no later pass fuses or reschedules it), or, for a
   whole TIRx kernel (it needs ``tir_pipeline="tirx"``), ``R.call_dps_packed`` of a kernel built
   on its own and linked into the VM executable through the module's ``external_mods``;
4. the gated MLP ``silu(x @ Wg.T) * (x @ Wu.T)`` (two matches: the up projection's output is the
   gate projection's epilogue operand) is rewritten into one ``gemm_gated_nt`` over the stacked
   weights ``[Wg; Wu]`` (a weight transform, lifted to load time), whose kernel applies the gate
   in its write-back (:func:`_fuse_gated`); if that kernel cannot be tuned, the two matches are
   served as they were. The report names the rewrite and the bindings it replaced;
5. NCHW convolutions run as NHWC: the weight transpose is a weight transform (lifted to load
   time by ``LiftTransformParams``), an activation already produced in NHWC by a previous
   dispatched conv is reused without a transpose (the layout rewrite the graph keeps).

Calls that do not match keep TVM's lowering; :class:`DispatchReport` says why for each.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import tvm
import tvm_ffi
from tvm import relax

from ..space.generator import Generator
from ..space.grammar import Grammar
from ..workloads import Workload, WorkloadError
from ..workloads.dtypes import DTYPES
from ..workloads.epilogue import ACC, Epilogue, Expr, F, const, operand
from .importer import LOW_PRECISION

log = logging.getLogger("autokernel_tvm")
HEAVY = ("relax.matmul", "relax.nn.conv2d")
#: Relax elementwise op -> epilogue function (None: a cast, computed in fp32 and dropped).
ELEMENTWISE = {
    "relax.add": "add",
    "relax.subtract": "sub",
    "relax.multiply": "mul",
    "relax.divide": "div",
    "relax.maximum": "maximum",
    "relax.minimum": "minimum",
    "relax.negative": "neg",
    "relax.nn.relu": "relu",
    "relax.nn.leakyrelu": "leaky_relu",
    "relax.nn.gelu": "gelu",
    "relax.nn.gelu_tanh": "gelu_tanh",
    "relax.nn.silu": "silu",
    "relax.sigmoid": "sigmoid",
    "relax.tanh": "tanh",
    "relax.exp": "exp",
    "relax.astype": None,
}
#: PrimFunc attribute ``op_pattern`` value kOpaque: FuseOps leaves the call alone.
OPAQUE = 8


@dataclass
class Match:
    """One heavy call and the chain it absorbs: what replaces the chain's last binding."""

    heavy: relax.Var
    last: relax.Var
    workload: Workload
    kind: str  # "matmul" | "matmul_flat" | "conv2d_nchw"
    a: relax.Expr
    b: relax.Expr
    operands: list  # relax.Expr per epilogue operand, in the op's output layout
    absorbed: list  # names of the absorbed bindings
    b2: relax.Expr | None = None  # gated: the up projection's weight (``b`` is the gate's)
    fallback: tuple = ()  # matches served instead when this one's kernel cannot be tuned
    rewrite: str = ""  # the graph rewrite that made this match ("" for none)


@dataclass
class DispatchReport:
    """Per heavy call: the kernel that serves it, or why TVM's lowering does."""

    served: list = dataclasses.field(default_factory=list)
    unmatched: list = dataclasses.field(default_factory=list)

    def to_json(self) -> dict:
        return {"served": self.served, "unmatched": self.unmatched}


def _shape(expr) -> tuple | None:
    ty = expr.ty if hasattr(expr, "ty") else None
    if not isinstance(ty, relax.TensorType) or ty.shape is None:
        return None
    try:
        return tuple(int(s) for s in ty.shape.values)
    except (TypeError, AttributeError):
        return None


def _dtype(expr) -> str:
    return str(expr.ty.dtype)


def _call_name(value) -> str | None:
    if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op):
        return value.op.name
    return None


def _scalar(expr, bound: dict) -> float | None:
    """The value of a one-element constant (possibly behind a binding), else None."""
    expr = bound.get(expr, expr)
    if isinstance(expr, tvm.ir.expr.Constant) and isinstance(expr.ty, relax.TensorType):
        arr = expr.value.numpy()
        if arr.size == 1:
            return float(arr.reshape(()))
    return None


def plan_function(
    func: relax.Function, serves=None, keep_pair=None
) -> tuple[list[Match], list[dict]]:
    """The matches in ``func``'s dataflow blocks and, for each heavy call left, the reason.

    Run ``DeadCodeElimination`` first (as the pass does): a dead reader ends a chain.
    ``serves(workload) -> bool``: whether a generative family can take ``workload`` on the
    target (:func:`served_by_a_family`); a transposed left operand is read as stored
    (``gemm_tn``) only where one can, else it stays a transpose before a ``gemm`` (default:
    always read as stored). ``keep_pair(gated, up) -> bool``: leave a gated-MLP pair as two
    GEMMs (workloads: the gated GEMM it would become, the up projection's); default: fuse.
    """
    matches, unmatched, users_by_var, values = [], [], {}, {}
    body = func.body
    output_vars = set(relax.analysis.free_vars(body.body)) if hasattr(body, "body") else set()
    for block in body.blocks:
        if not isinstance(block, relax.DataflowBlock):
            continue
        bindings = [b for b in block.bindings if isinstance(b, relax.VarBinding)]
        bound = {b.var: b.value for b in bindings}
        values.update(bound)
        users: dict = {}
        for i, b in enumerate(bindings):
            for v in relax.analysis.free_vars(b.value):
                users.setdefault(v, set()).add(i)
                users_by_var.setdefault(v, set()).add(b.var)
        taken: set = set()
        for i, b in enumerate(bindings):
            name = _call_name(b.value)
            if name not in HEAVY:
                continue
            try:
                match = _match(i, bindings, bound, users, output_vars, taken, serves)
            except _NoMatch as why:
                unmatched.append({"call": b.var.name, "op": name, "reason": str(why)})
                continue
            taken.update(match.absorbed)
            matches.append(match)
    return _fuse_gated(matches, users_by_var, keep_pair, values), unmatched


class _NoMatch(Exception):
    pass


#: the kinds of match whose GEMM computes rows of [M, N] (2-D A, or N-D A flattened)
ROWS = ("matmul", "matmul_flat")


#: ``silu(acc)`` as the importer writes it (decomposed into acc * sigmoid(acc)) or as one op.
_SILU = (F("silu", ACC), F("mul", ACC, F("sigmoid", ACC)), F("mul", F("sigmoid", ACC), ACC))
_GATED = {F("mul", s, operand(0)) for s in _SILU} | {F("mul", operand(0), s) for s in _SILU}


def _same_rows(x, y, bound: dict) -> bool:
    """``x`` and ``y`` are one value: the same var, or the same reshape (broadcast) of one (the
    importer reshapes 3-D activations anew for each Linear that reads them)."""
    if x.same_as(y):
        return True
    vx, vy = bound.get(x), bound.get(y)
    return (
        _call_name(vx) == _call_name(vy) in ("relax.reshape", "relax.broadcast_to")
        and vx.args[0].same_as(vy.args[0])
        and _shape(x) == _shape(y)
    )


def _fuse_gated(matches: list, users: dict, keep_pair=None, bound=None) -> list:
    """Matches with each gated-MLP pair ``silu(x @ Wg.T) * (x @ Wu.T)`` made one ``gated``
    match: the gate projection's epilogue is exactly ``silu(acc) * operand`` and the operand is
    the output of the up projection (same ``x``, same shape, no epilogue), read nowhere else;
    not where ``keep_pair(gated, up workload)`` says so (:func:`rewrite_module`)."""
    # The operand is the up projection's output, or its accumulator when the chain only casts
    # it (the epilogue then reads the fp32 value the cast would have rounded).
    by_out = {v: m for m in matches for v in (m.last, m.heavy)}
    fused, gone = [], set()
    for gate in matches:
        wl, up = gate.workload, None
        if wl.op == "gemm_nt" and gate.kind in ROWS and wl.epilogue is not None:
            if wl.epilogue.expr in _GATED and wl.epilogue.operands == ("full",):
                up = by_out.get(gate.operands[0])
        if (
            up is None
            or up is gate
            or up.kind not in ROWS
            or up.workload.op != "gemm_nt"
            or up.workload.epilogue is not None
            or up.workload.shape != wl.shape
            or not _same_rows(up.a, gate.a, bound or {})
            or not all(users.get(v, set()) <= {*up.absorbed, *gate.absorbed} for v in up.absorbed)
        ):
            fused.append(gate)
            continue
        gated = Workload("gemm_gated_nt", wl.shape, wl.dtype, wl.out_dtype)
        if keep_pair is not None and keep_pair(gated, up.workload):
            fused.append(gate)
            continue
        absorbed = [*up.absorbed, *gate.absorbed]
        fused.append(
            dataclasses.replace(
                gate,
                workload=gated,
                kind="gated",
                operands=[],
                absorbed=absorbed,
                b2=up.b,
                fallback=(up, gate),
                rewrite="gated-mlp",
            )
        )
        gone.add(up.last)
    return [m for m in fused if m.last not in gone]


def _heavy_view(value, bound: dict, stored_a: bool = True, upcast: bool = True):
    """(kind, a, b, op, shape) of a heavy call, or raise _NoMatch; ``stored_a``: a transposed
    left operand is read as stored (``gemm_tn``); ``upcast``: an fp32 matmul of two fp16 (bf16)
    tensors cast to fp32 is read as their GEMM with an fp32 result."""
    name = _call_name(value)
    a, b = value.args[0], value.args[1]
    sa, sb = _shape(a), _shape(b)
    if sa is None or sb is None:
        raise _NoMatch("dynamic or unknown shapes")
    if _dtype(a) != _dtype(b) or _dtype(a) not in DTYPES:
        raise _NoMatch(f"operand dtypes {_dtype(a)}, {_dtype(b)}: a float dtype of {DTYPES}")
    if name == "relax.nn.conv2d":
        at = value.attrs
        if (at.data_layout, at.kernel_layout, at.out_layout) != ("NCHW", "OIHW", "NCHW"):
            raise _NoMatch(f"conv2d layouts {at.data_layout}/{at.kernel_layout}: NCHW/OIHW")
        strides, pad = [int(s) for s in at.strides], [int(p) for p in at.padding]
        if int(at.groups) != 1 or any(int(d) != 1 for d in at.dilation):
            raise _NoMatch("grouped or dilated conv2d: conv2d_nhwc has groups=1, dilation=1")
        if len(set(strides)) != 1 or len(set(pad)) != 1:
            raise _NoMatch(f"strides {strides} / padding {pad}: one value each")
        n, c, h, w = sa
        k, c2, r, s = sb
        if c != c2:
            raise _NoMatch("conv2d channel mismatch")
        shape = (n, h, w, c, k, r, s, strides[0], pad[0])
        return "conv2d_nchw", a, b, "conv2d_nhwc", shape
    if len(sa) >= 3 and len(sb) == len(sa) and _call_name(bound.get(b)) == "relax.broadcast_to":
        # torch.export's Linear on a non-contiguous N-D input: a bmm over the weight expanded
        # to every batch; one GEMM over the rows reads the weight once
        inner = bound[b].args[0]
        shape = _shape(inner)
        if shape is not None and (len(shape) == 2 or math.prod(shape[:-2]) == 1):
            b, sb = inner, shape[-2:]
    (pa, ta, _), (pb, trans_b, _) = _peel(a, bound), _peel(b, bound)
    # A.T @ B reads A as stored ([K, M]) in a 2-D or batched matmul whose B is not transposed
    # too (no kernel takes both; a flattened N-D A has no [K, M] storage)
    trans_a = ta and stored_a and not trans_b and len(sa) == len(sb) and len(sa) in (2, 3)
    a_src, b_src = pa if trans_a else a, pb if trans_b else b
    layout = "_nt" if trans_b else "_tn" if trans_a else ""
    (ca, ta2, cast_a), (cb, tb2, cast_b) = _peel(a, bound, casts=True), _peel(b, bound, casts=True)
    if upcast and cast_a is not None and cast_a == cast_b and (ta2, tb2) == (trans_a, trans_b):
        a_src, b_src = ca, cb  # the 16-bit tensors, in the layout read without the casts
    if len(sb) == 2 and len(sa) >= 2:
        k, n = sb
        m = math.prod(sa[:-1])
        if sa[-1] != k:
            raise _NoMatch(f"matmul K mismatch {sa} x {sb}")
        kind = "matmul" if len(sa) == 2 else "matmul_flat"
        return kind, a_src, b_src, "gemm" + layout, (m, n, k)
    if len(sa) == 3 and len(sb) == 3 and sa[0] == sb[0] == 1:  # (einsum's batch of one): a
        # plain GEMM, whose seeds, library entries and GEMV family a batch of one misses
        _, m, k = sa
        n = sb[2]
        return "matmul_flat", a_src, b_src, "gemm" + layout, (m, n, k)
    if len(sa) == 3 and len(sb) == 3 and sa[0] == sb[0]:
        bsz, m, k = sa
        n = sb[2]
        return "matmul", a_src, b_src, "batch_gemm" + layout, (bsz, m, n, k)
    raise _NoMatch(f"matmul of ranks {len(sa)} x {len(sb)}: 2-D/N-D x 2-D or batched 3-D")


def served_by_a_family(grammar, workload) -> bool:
    """Whether a generative family has a legal genome for ``workload`` on the grammar's target
    (the generator's first proposal, repaired toward legality as in a tuning run). ``A.T @ B``
    on an sm_80 GPU has none -- cuda.mma reads A K-major only -- and runs better as a
    transpose and a ``gemm`` than in the stock space."""
    return bool(Generator(grammar, workload, seed=0).propose(1))


def _peel(expr, bound: dict, casts: bool = False) -> tuple:
    """``(source, transposed, cast)``: the tensor a matmul operand reads before the views that
    keep each matrix's values in place -- a swap of the last two axes (``transposed`` toggles),
    a ``broadcast_to`` of its own shape and a reshape of the batch axes alone (torch.export
    writes a 4-D matmul as expand + view + bmm) -- and, with ``casts``, before one cast of an
    fp16 (bf16) tensor to fp32 (``cast``: that dtype). The products of 16-bit values are exact
    in fp32, so an fp32 GEMM of such casts is the 16-bit GEMM summed in fp32 (attention's
    scores: a flash kernel's, on the tensor cores)."""
    transposed, cast = False, None
    while True:
        value, shape = bound.get(expr), _shape(expr)
        name = _call_name(value)
        inner = value.args[0] if name else None
        if name == "relax.permute_dims" and shape is not None:
            axes = [int(x) for x in value.attrs.axes] if value.attrs.axes is not None else None
            if axes != [*range(len(shape) - 2), len(shape) - 1, len(shape) - 2]:
                break
            transposed = not transposed
        elif name == "relax.broadcast_to" and _shape(inner) != shape:
            break
        elif name == "relax.reshape":
            src = _shape(inner)
            if src is None or shape is None or len(src) < 2 or src[-2:] != shape[-2:]:
                break
        elif name == "relax.astype" and casts and cast is None:
            if _dtype(expr) != "float32" or _dtype(inner) not in LOW_PRECISION:
                break
            cast = _dtype(inner)
        elif name != "relax.broadcast_to":
            break
        expr = inner
    return expr, transposed, cast


def _match(i, bindings, bound, users, output_vars, taken, serves=None) -> Match:
    heavy = bindings[i]
    kind, a, b, op, shape = _heavy_view(heavy.value, bound)
    # A read as stored, and operands read before their casts, only where a family can
    stored_a, upcast = not op.endswith("_tn"), _dtype(a) == _dtype(heavy.value.args[0])
    if serves is not None and not (stored_a and upcast):
        if not serves(Workload(op, shape, _dtype(a), _dtype(heavy.var))):
            kind, a, b, op, shape = _heavy_view(heavy.value, bound, stored_a, upcast)
    out_shape = _shape(heavy.var)
    # a (non-batched) GEMM's chain may reshape its [M, N] rows ([B * S, N] <-> [B, S, N]: how
    # the importer writes a Linear on 3-D activations), broadcasts read against each value's
    # shape; a batched GEMM's and a conv's chains keep the output's shape
    rows = kind in ROWS and not op.startswith("batch")
    region = {heavy.var: ACC}
    operands: list = []  # (relax expr, broadcast)
    order = [i]
    tainted: set = set()
    for j in range(i + 1, len(bindings)):
        bj = bindings[j]
        free = set(relax.analysis.free_vars(bj.value))
        if not free & set(region):
            if free & tainted:
                tainted.add(bj.var)
            continue
        expr = None
        if not free & tainted and bj.var not in taken:
            view = _shape(bj.var) if rows else None
            expr = _absorb(bj.value, region, operands, out_shape, kind, bound, view)
        if expr is None:
            tainted.add(bj.var)
            continue
        region[bj.var] = expr
        order.append(j)
    # The longest prefix whose values other than the last are read only inside it.
    for end in range(len(order), 0, -1):
        inside = set(order[:end])
        ok = all(
            users.get(bindings[j].var, set()) <= inside and bindings[j].var not in output_vars
            for j in order[: end - 1]
        )
        if ok and _dtype(bindings[order[end - 1]].var) in DTYPES:
            break
    last = bindings[order[end - 1]].var
    expr = region[last]
    used = sorted({int(n.value) for n in expr.nodes() if n.op == "operand"})
    renumber = {old: new for new, old in enumerate(used)}
    expr = _renumber(expr, renumber)
    ops = [operands[old] for old in used]
    epilogue = Epilogue(expr, tuple(bc for _, bc in ops)) if expr != ACC or ops else None
    in_dtype = _dtype(a)
    try:
        workload = Workload(op, shape, in_dtype, _dtype(last), epilogue)
    except WorkloadError as err:
        raise _NoMatch(str(err)) from err
    absorbed = [bindings[j].var for j in order[:end]]
    return Match(heavy.var, last, workload, kind, a, b, [e for e, _ in ops], absorbed)


def _renumber(expr: Expr, mapping: dict) -> Expr:
    if expr.op == "operand":
        return operand(mapping[int(expr.value)])
    if not expr.args:
        return expr
    return Expr(expr.op, tuple(_renumber(a, mapping) for a in expr.args), expr.value)


def _absorb(value, region, operands, out_shape, kind, bound, view=None) -> Expr | None:
    """The epilogue expression of binding ``value`` over the ``region`` (None: not absorbed).
    ``view``: the binding's shape, where the chain may view the GEMM's rows in other shapes."""
    name = _call_name(value)
    if view is not None:
        if name == "relax.reshape" or _moves_unit_axes(value):  # the same values in the same
            # order; shaped [..., N] (or so but for axes of 1, on the way to [..., N] again)
            unit_free = tuple(d for d in view if d != 1) or (1,)
            return region.get(value.args[0]) if _rows_view(unit_free, out_shape) else None
        if not _rows_view(view, out_shape):
            return None
    if name not in ELEMENTWISE:
        return None
    fn = ELEMENTWISE[name]
    if name == "relax.astype" and str(value.attrs.dtype) not in DTYPES:
        return None  # a cast to an integer type truncates: not an identity in fp32
    args = []
    for arg in value.args:
        if arg in region:
            args.append(region[arg])
            continue
        scalar = _scalar(arg, bound)
        if scalar is not None:
            args.append(const(scalar))
            continue
        broadcast = _broadcast(arg, out_shape, kind, view)
        if broadcast is None:
            return None
        src = arg
        inner = bound.get(arg)
        if _call_name(inner) == "relax.astype" and _dtype(inner.args[0]) in DTYPES:
            src = inner.args[0]  # the importer's fp32 promotion of a bias: read the bias
        operands.append((src, broadcast))
        args.append(operand(len(operands) - 1))
    if fn is None:
        return args[0]
    value_attr = float(value.attrs.alpha) if fn == "leaky_relu" else 0.0
    return F(fn, *args, value=value_attr)


def _moves_unit_axes(value) -> bool:
    """A ``permute_dims`` that moves only axes of extent 1 (einsum's imports write them): the
    elements keep their order, like a reshape."""
    if _call_name(value) != "relax.permute_dims" or value.attrs.axes is None:
        return False
    shape = _shape(value.args[0])
    if shape is None:
        return False
    moved = [int(x) for x in value.attrs.axes if shape[int(x)] != 1]
    return moved == sorted(moved)


def _rows_view(shape, out_shape) -> bool:
    """Whether ``shape`` holds the rows of a GEMM output shaped ``out_shape`` (``[..., N]``)."""
    if shape is None or out_shape is None or not shape or shape[-1] != out_shape[-1]:
        return False
    return math.prod(shape[:-1]) == math.prod(out_shape[:-1])


def _broadcast(arg, out_shape, kind, view=None) -> str | None:
    shape = _shape(arg)
    if shape is None or out_shape is None:
        return None
    if view is not None:  # against the value's own shape, a view of the GEMM's rows
        if len(shape) > len(view):
            return None
        padded = (1,) * (len(view) - len(shape)) + tuple(shape)
        if padded == tuple(view):
            return "full"
        if padded == (1,) * (len(view) - 1) + (view[-1],):
            return "n"
        if padded == (*view[:-1], 1):  # one value per row, every row (B x S of them)
            return "m"
        return None
    if shape == out_shape:
        return "full"
    squeezed = tuple(shape)
    while squeezed and squeezed[0] == 1 and len(squeezed) > 1:
        squeezed = squeezed[1:]
    if kind == "conv2d_nchw":
        return "n" if squeezed in ((out_shape[1], 1, 1),) else None
    if squeezed == (out_shape[-1],):
        return "n"
    if squeezed == (out_shape[-2], 1):
        return "m"
    return None


class KernelProvider:
    """Tunes (or finds) the kernel of a workload: ``Tuner.tune``, memoised per workload."""

    def __init__(self, tuner):
        self.tuner = tuner
        self.results: dict = {}

    def __call__(self, workload: Workload):
        if workload not in self.results:
            self.results[workload] = self.tuner.tune(workload)
        return self.results[workload]


def dispatch_kernels(
    tuner, *, report: DispatchReport | None = None, provider=None, external: bool = False
):
    """The Relax pass: replace matched heavy calls by calls into tuned kernels.

    Parameters
    ----------
    tuner : Tuner
        Tunes each workload (``config.trials`` per kernel) for ``tuner.target``.
    report : DispatchReport, optional
        Filled with the served and unmatched calls.
    provider : callable, optional
        ``provider(workload) -> TuneResult``; default :class:`KernelProvider` over ``tuner``.
    external : bool
        Build every kernel on its own and call it with ``call_dps_packed`` (what whole TIRx
        kernels always get) instead of adding scheduled PrimFuncs to the module.
    """
    report = report if report is not None else DispatchReport()
    provider = provider or KernelProvider(tuner)

    precision = {
        "gemm": "tf32" if tuner.config.allow_tf32 else "",
        "conv": "tf32" if tuner.config.allow_tf32_conv else "",
    }

    @tvm.transform.module_pass(opt_level=0, name="AutokernelDispatch")
    def _pass(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return rewrite_module(
            mod, tuner.target, provider, report, external=external, precision=precision
        )

    return _pass


def rewrite_module(
    mod, target, provider, report: DispatchReport, *, external=False, precision=None
):
    """Apply the dispatch to every Relax function of ``mod`` (see :func:`dispatch_kernels`);
    ``precision``: ``{"gemm" | "conv": "tf32" or ""}``, "tf32" where the user allowed TF32 for
    fp32 matmuls (torch.backends.cuda.matmul.allow_tf32) or convolutions (cudnn's)."""
    # Dead bindings (e.g. batch_norm's unused (out, mean, var) tuple) would end chains early.
    mod = relax.transform.DeadCodeElimination()(mod)
    grammar = Grammar(target)
    served = {}  # per workload: a model repeats its layers' shapes

    def serves(workload) -> bool:
        if workload not in served:
            served[workload] = served_by_a_family(grammar, workload)
        return served[workload]

    def keep_pair(gated, up) -> bool:
        # On a GPU, a gated GEMM no family takes runs in the stock space, without the tensor
        # cores the pair's kernels use (fp32 past a GEMV's rows: no gated 3xTF32 kernel); on
        # a CPU both run on the same vector units, and the fusion saves a pass
        return target.kind.name != "llvm" and not serves(gated) and serves(up)

    builder = relax.BlockBuilder(mod)
    attrs = dict(mod.attrs) if mod.attrs else {}
    libs, linked = list(attrs.get("external_mods", [])), set()
    for gv, func in list(mod.functions.items()):
        if not isinstance(func, relax.Function) or gv.name_hint.endswith("transform_params"):
            continue
        matches, unmatched = plan_function(func, serves, keep_pair)
        matches = [_with_precision(m, precision) for m in matches]
        report.unmatched += [{**u, "function": gv.name_hint} for u in unmatched]
        kernels = {}
        todo = list(matches)
        while todo:
            match = todo.pop(0)
            try:
                result = provider(match.workload)
                if result.workload != match.workload:
                    raise ValueError(f"the provider returned a kernel of {result.workload.name}")
            except Exception as err:  # no legal candidate, all failed the gate...
                reason = f"tuning {match.workload.name} failed: {type(err).__name__}: {err}"
                reason = reason[:400]
                if match.fallback:
                    reason = f"served without the {match.rewrite} rewrite: {reason}"
                    todo[:0] = match.fallback
                report.unmatched.append({"call": match.heavy.name, "op": "tune", "reason": reason})
                continue
            kernels[match.last] = (match, result)
        if kernels:
            new = _rewrite(func, kernels, builder, target, (libs, linked, external), report)
            builder.update_func(gv, new)
    out = builder.get()
    if libs:
        out = out.with_attr("external_mods", libs)
    return relax.transform.DeadCodeElimination()(out)


#: built kernel libraries by (target, structural hash): a model compiled again in the same
#: process (the problem path, then torch.compile's backend) links the library it built before
#: instead of running nvcc again. Bounded: the oldest entries go first.
_BUILT: dict = {}
_BUILT_MAX = 64


def _built(mod: tvm.IRModule, target) -> tvm.runtime.Module:
    from ..builder import build_module

    key = (str(target), tvm_ffi.structural_hash(mod))
    hit = _BUILT.get(key)
    if hit is not None and tvm_ffi.structural_equal(hit[0], mod):
        return hit[1]
    if len(_BUILT) >= _BUILT_MAX:
        _BUILT.pop(next(iter(_BUILT)))
    _BUILT[key] = (mod, build_module(mod, target).mod)
    return _BUILT[key][1]


def _with_precision(match: Match, precision: dict | None) -> Match:
    """``match`` (and its fallbacks) with fp32 workloads given the ``precision`` of their kind
    (``"conv"`` for conv2d, ``"gemm"`` for the rest)."""
    workload = match.workload
    chosen = (precision or {}).get("conv" if workload.op == "conv2d_nhwc" else "gemm", "")
    if workload.dtype == "float32" and chosen:
        workload = dataclasses.replace(workload, precision=chosen)
    fallback = tuple(_with_precision(f, precision) for f in match.fallback)
    return dataclasses.replace(match, workload=workload, fallback=fallback)


def _rewrite(func, kernels, builder, target, linking, report):
    from ..builder import companions, is_tirx

    nhwc: dict = {}  # NCHW var -> the NHWC value it was transposed from
    libs, linked, external = linking
    new_blocks = []
    for block in func.body.blocks:
        if not isinstance(block, relax.DataflowBlock):
            new_blocks.append(block)
            continue
        out: list = []

        def emit(expr, name="ak", out=out):
            value = builder.normalize(expr)
            var = relax.DataflowVar(name, value.ty)
            out.append(relax.VarBinding(var, value))
            return var

        for binding in block.bindings:
            if binding.var not in kernels:
                out.append(binding)
                continue
            match, result = kernels[binding.var]
            wl = match.workload
            symbol = f"ak_{wl.name}"
            if external or is_tirx(result.mod):
                if symbol not in linked:  # one library per kernel, however often it is called
                    func_ = result.mod["main"].with_attr("global_symbol", symbol)
                    funcs = {symbol: func_, **companions(result.mod)}
                    libs.append(_built(tvm.IRModule(funcs), target))
                    linked.add(symbol)
                callee, link = symbol, "packed"
            else:
                prim = result.mod["main"].with_attrs(
                    {"global_symbol": symbol, "tir.is_scheduled": True, "op_pattern": OPAQUE}
                )
                callee, link = _add_func(builder, prim, symbol), "call_tir"
            args = _kernel_args(match, emit, nhwc)
            out_ty = relax.TensorType(list(wl.output.shape), wl.out_dtype)
            if link == "packed":
                call = relax.call_dps_packed(callee, args, out_ty)
            else:
                call = relax.call_tir(callee, args, out_ty)
            result_var = emit(call, "ak_out")
            if match.kind == "conv2d_nchw":
                final = relax.op.permute_dims(result_var, [0, 3, 1, 2])
            elif _shape(match.last) != tuple(wl.output.shape):  # [M, N] as the chain left it
                final = relax.op.reshape(result_var, list(_shape(match.last)))
            else:
                final = result_var
            out.append(relax.VarBinding(binding.var, builder.normalize(final)))
            if match.kind == "conv2d_nchw":
                nhwc[binding.var] = result_var
            report.served.append(
                {
                    "call": match.heavy.name,
                    "absorbed": [v.name for v in match.absorbed],
                    "workload": wl.name,
                    "workload_json": wl.to_json(),
                    "epilogue": str(wl.epilogue) if wl.epilogue is not None else "",
                    "kernel": symbol,
                    "rewrite": match.rewrite,
                    "link": link,
                    # the family by name (cuda.wgmma, ..., "stock"), and its record dir
                    "family": (result.genome or {}).get("family", "stock"),
                    "space": result.space,
                    "latency_us": result.latency_s * 1e6,
                    "verify": bool(result.verify and result.verify.get("passed")),
                    # what tuning it cost: seconds, measured trials, and whether the library
                    # held this workload (a rerun's shorter budget, Tuner.trial_budget)
                    "tune_seconds": result.tune_seconds,
                    "trials": result.trials,
                    "library_hit": bool(result.space_report.get("library_hit")),
                }
            )
        new_blocks.append(relax.DataflowBlock(out))
    body = relax.SeqExpr(new_blocks, func.body.body)
    return relax.Function(func.params, body, func.ret_ty, func.is_pure, func.attrs)


def _add_func(builder, prim, symbol):
    for gv in builder.get().functions:
        if gv.name_hint == symbol:
            return gv
    return builder.add_func(prim, symbol)


def _to_nhwc(expr, emit, nhwc):
    if expr not in nhwc:  # each activation is transposed once, however many kernels read it
        nhwc[expr] = emit(relax.op.permute_dims(expr, [0, 2, 3, 1]), "ak_nhwc")
    return nhwc[expr]


def _kernel_args(match: Match, emit, nhwc) -> list:
    wl = match.workload

    def shaped(expr, spec, name="ak"):  # ``expr`` as the kernel's parameter (N-D rows: 2-D)
        if _shape(expr) == spec.shape:
            return expr
        return emit(relax.op.reshape(expr, list(spec.shape)), name)

    if match.kind == "conv2d_nchw":
        args = [_to_nhwc(match.a, emit, nhwc), emit(relax.op.permute_dims(match.b, [0, 2, 3, 1]))]
    elif match.kind == "gated":  # [Wg; Wu] as [2, N, K]: a weight transform, run at load time
        stacked = emit(relax.op.concat([match.b, match.b2], axis=0), "ak_gated_w")
        args = [shaped(match.a, wl.inputs[0], "ak_flat"), shaped(stacked, wl.inputs[1])]
    else:  # matmul_flat: N-D A (a batch of one: B too) as the GEMM's 2-D
        args = [shaped(x, spec, "ak_flat") for x, spec in zip((match.a, match.b), wl.inputs)]
    specs = wl.inputs[len(args) :]
    for expr, spec in zip(match.operands, specs, strict=True):
        if _dtype(expr) != spec.dtype:
            expr = emit(relax.op.astype(expr, spec.dtype))
        if match.kind == "conv2d_nchw" and len(spec.shape) == 4:
            expr = _to_nhwc(expr, emit, nhwc)  # always: NCHW and NHWC shapes may coincide
        else:
            expr = shaped(expr, spec)
        args.append(expr)
    return args


__all__ = [
    "DispatchReport", "KernelProvider", "Match", "dispatch_kernels", "plan_function",
    "served_by_a_family",
]  # fmt: skip
