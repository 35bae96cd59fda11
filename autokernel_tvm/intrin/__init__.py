# SPDX-License-Identifier: Apache-2.0
"""Tensor-core intrinsics TVM 0.27 lacks: bf16 mma.sync (CUDA) and the MFMA schedule (ROCm),
and a fast import of TVM's own intrinsics."""

import inspect
import sys


def register_all() -> None:
    """Register this package's TensorIntrins (idempotent)."""
    from . import cuda_bf16

    cuda_bf16.register()


def import_stock_intrinsics() -> None:
    """Import ``tvm.s_tir.tensor_intrin`` (done by every ``TuneContext``) about 7x faster.

    Its ~250 TVMScript functions each call ``inspect.stack()``, which resolves the source file
    of every frame on the stack; the parser only reads the third frame's source line. Measured
    on 2 busy cores: 95 s -> 13 s. Only frames beyond the third lose their source context.
    """
    if "tvm.s_tir.tensor_intrin" in sys.modules:
        return
    original = inspect.stack

    def _stack(context: int = 1):
        frame, frames = sys._getframe(1), []
        while frame is not None:
            if len(frames) < 3:
                frames.append(inspect.FrameInfo(frame, *inspect.getframeinfo(frame, context)))
            else:
                code = frame.f_code
                info = (code.co_filename, frame.f_lineno, code.co_name, None, None)
                frames.append(inspect.FrameInfo(frame, *info))
            frame = frame.f_back
        return frames

    inspect.stack = _stack
    try:
        import tvm.s_tir.tensor_intrin  # noqa: F401
    finally:
        inspect.stack = original
