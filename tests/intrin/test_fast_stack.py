# SPDX-License-Identifier: Apache-2.0
"""intrin.fast_stack: inspect.stack as TVMScript's decorators read it, patched for a block."""

import inspect

import tvm
from tvm.script import ir as I
from tvm.script import tirx as T

from autokernel_tvm.intrin import fast_stack


def _inner():
    return inspect.stack()


def _middle():
    return _inner()


def test_frames_match_the_real_stack_and_the_third_keeps_its_line():
    real = _middle()  # the third frame
    with fast_stack():
        fast = _middle()  # the third frame
    assert [f.function for f in fast] == [f.function for f in real]
    assert [f.filename for f in fast] == [f.filename for f in real]
    assert fast[2].lineno == real[2].lineno + 2
    assert fast[2].code_context[0].strip() == "fast = _middle()  # the third frame"
    assert fast[0].code_context is None and fast[1].code_context is None
    assert fast[3].frame is real[3].frame  # later frames keep their locals (closure lookups)


def test_nested_uses_restore_inspect_stack_when_the_last_leaves():
    original = inspect.stack
    with fast_stack():
        with fast_stack():
            assert inspect.stack is not original
        assert inspect.stack is not original
    assert inspect.stack is original


def test_tvmscript_in_a_class_module_and_a_closure_parses_under_it():
    # I.ir_module's methods are recognised by the third frame's line (the class's decorator);
    # a prim_func in a function reads the enclosing function's locals through the frames
    n = 16
    with fast_stack():

        @I.ir_module
        class Module:
            @T.prim_func
            def main(a: T.Buffer((16,), "float32")):
                for i in range(16):
                    a[i] = T.float32(1)

        @T.prim_func
        def closure(a: T.Buffer((n,), "float32")):
            for i in range(n):
                a[i] = T.float32(2)

    assert isinstance(Module, tvm.IRModule)
    assert [gv.name_hint for gv in Module.get_global_vars()] == ["main"]
    assert isinstance(closure, tvm.tirx.PrimFunc) and "(16,)" in closure.script()
