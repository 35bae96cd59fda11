# SPDX-License-Identifier: Apache-2.0
"""A model's reshapes as views: chains of reshapes folded, and the reshapes a function returns
bound so TVM makes them views like the ones inside it.

Both run in ``passes.lower_pipeline``: :func:`fold_reshapes` first, before fusion, and
:func:`view_output_reshapes` after fusion, before TVM's ``RewriteDataflowReshape``.
"""

from __future__ import annotations

import tvm
from tvm import relax

from .dispatch import _shape


def fold_reshapes() -> tvm.transform.Pass:
    """A reshape of a reshape reads the first one's input; one back to that input's shape is it.

    A kernel the dispatch serves on 3-D activations returns ``[M, N]`` reshaped to
    ``[B, S, N]``, and the next Linear (or the user's ``.reshape``) reshapes that again: fused,
    the two reshapes are one copy kernel, which TVM does not turn into a view. Chains are
    followed within a block (a ``DataflowVar`` is not visible past it); a block's output is not
    made an alias of a parameter (it stays a reshape). The bindings left unused go.
    """
    reshape = tvm.ir.Op.get("relax.reshape")

    def fold(block, builder, params) -> tuple[list, bool]:
        root: dict = {}  # a reshape's var -> the value its chain of reshapes starts from
        out, changed = [], False
        for binding in block.bindings:
            value = binding.value
            if not (isinstance(value, relax.Call) and value.op.same_as(reshape)):
                out.append(binding)
                continue
            source = value.args[0]
            start = root.get(source, source)
            root[binding.var] = start
            escapes = not isinstance(binding.var, relax.DataflowVar) and start in params
            if start is source or escapes:
                out.append(binding)
                continue
            shape = _shape(start)
            same = shape is not None and shape == _shape(binding.var)
            new = start if same else builder.normalize(relax.op.reshape(start, value.args[1]))
            out.append(relax.VarBinding(binding.var, new))
            changed = True
        return out, changed

    @tvm.transform.module_pass(opt_level=0, name="FoldReshapes")
    def _pass(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        builder = relax.BlockBuilder(mod)
        touched = _rebind(mod, lambda block, func: fold(block, builder, set(func.params)))
        return relax.transform.DeadCodeElimination()(mod) if touched else mod

    return _pass


def _rebind(mod: tvm.IRModule, rewrite) -> bool:
    """Each dataflow block of each Relax function of ``mod`` (in place) as ``rewrite(block,
    func) -> (bindings, changed)`` binds it; whether any changed."""
    touched = False
    for gvar, func in list(mod.functions.items()):
        if not isinstance(func, relax.Function) or not isinstance(func.body, relax.SeqExpr):
            continue
        blocks, changed = [], False
        for b in func.body.blocks:
            if isinstance(b, relax.DataflowBlock):
                bindings, hit = rewrite(b, func)
                b, changed = (relax.DataflowBlock(bindings), True) if hit else (b, changed)
            blocks.append(b)
        if changed:
            body = relax.SeqExpr(blocks, func.body.body)
            mod[gvar] = relax.Function(func.params, body, func.ret_ty, func.is_pure, func.attrs)
            touched = True
    return touched


def view_output_reshapes() -> tvm.transform.Pass:
    """Reshapes that a dataflow block outputs become views, like the ones inside it.

    TVM's ``RewriteDataflowReshape`` turns a legalized reshape into the VM's ``reshape`` view only
    where its result is a ``DataflowVar``; a block's output (what a function returning a
    reshaped tensor returns) stays a copy kernel. A transformer's Linear on ``[B, S, H]`` ends
    in such a reshape: 24 us of copying on LLaMA's MLP at 4 x 512 tokens, 3% of it. Here each
    output reshape of an intermediate (never of a parameter: that would return a view of the
    caller's input) is bound to a ``DataflowVar`` the output then names, so the rewrite takes
    it. Memory planning keeps the viewed tensor out of the plan: it follows views to the
    function's return. Run after fusion (which would bind the output to the reshape again) and
    before ``RewriteDataflowReshape``.
    """
    call_tir = tvm.ir.Op.get("relax.call_tir")

    def is_output_reshape(binding, mod) -> bool:
        value = binding.value
        if isinstance(binding.var, relax.DataflowVar) or not isinstance(value, relax.Call):
            return False
        if not value.op.same_as(call_tir) or len(value.args[1].fields) != 1:
            return False
        source, callee = value.args[1].fields[0], mod[value.args[0]]
        return isinstance(source, relax.DataflowVar) and relax.analysis.has_reshape_pattern(callee)

    def block(dataflow, mod) -> tuple[list, bool]:
        out, changed = [], False
        for binding in dataflow.bindings:
            if is_output_reshape(binding, mod):
                view = relax.DataflowVar(f"{binding.var.name}_view", binding.var.ty)
                out += [relax.VarBinding(view, binding.value), relax.VarBinding(binding.var, view)]
                changed = True
            else:
                out.append(binding)
        return out, changed

    @tvm.transform.module_pass(opt_level=0, name="ViewOutputReshapes")
    def _pass(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        _rebind(mod, lambda b, _func: block(b, mod))
        return mod

    return _pass
