# SPDX-License-Identifier: Apache-2.0
"""Tensor-core intrinsics TVM 0.27 lacks: bf16 mma.sync (CUDA) and the MFMA schedule (ROCm),
and a fast import of TVM's own intrinsics."""

import contextlib
import inspect
import linecache
import sys
import threading


def register_all() -> None:
    """Register this package's TensorIntrins (idempotent)."""
    from . import cuda_bf16

    cuda_bf16.register()


@contextlib.contextmanager
def fast_stack():
    """``inspect.stack`` as TVMScript's decorators read it, without the slow parts, while the
    block runs: ``@T.prim_func`` (and ``I.ir_module``) call ``inspect.stack()`` once each and
    read the third frame's source line (is the function defined in a class?) and the later
    frames' locals (closure variables). The real one finds the source file of every frame on
    the stack, each through ``inspect.getmodule``, which scans ``sys.modules`` (hundreds of
    modules once torch is loaded). Here every frame gets its file, line and name, the third
    its source line (``linecache``), the others none. Nested and threaded uses share one
    patch, removed when the last leaves."""
    global _FAST_STACK_USERS
    with _FAST_STACK_LOCK:
        if _FAST_STACK_USERS == 0:
            inspect.stack = _stack
        _FAST_STACK_USERS += 1
    try:
        yield
    finally:
        with _FAST_STACK_LOCK:
            _FAST_STACK_USERS -= 1
            if _FAST_STACK_USERS == 0:
                inspect.stack = _INSPECT_STACK


_INSPECT_STACK = inspect.stack
_FAST_STACK_LOCK = threading.Lock()
_FAST_STACK_USERS = 0


def _stack(context: int = 1) -> list:
    frame, frames = sys._getframe(1), []
    while frame is not None:
        code = frame.f_code
        lines = None
        if len(frames) == 2:
            line = linecache.getline(code.co_filename, frame.f_lineno, frame.f_globals)
            lines = [line] if line else None
        frames.append(
            inspect.FrameInfo(frame, code.co_filename, frame.f_lineno, code.co_name, lines, 0)
        )
        frame = frame.f_back
    return frames


def import_stock_intrinsics() -> None:
    """Import ``tvm.s_tir.tensor_intrin`` (done by every ``TuneContext``) under
    :func:`fast_stack`: its ~250 TVMScript functions each call ``inspect.stack()``. Measured
    on 2 busy cores: 95 s -> 13 s with the first three frames' sources still read; reading
    only the third's, 3.9 -> 2.2 s on 2 idle cores with torch loaded."""
    if "tvm.s_tir.tensor_intrin" in sys.modules:
        return
    with fast_stack():
        import tvm.s_tir.tensor_intrin  # noqa: F401
