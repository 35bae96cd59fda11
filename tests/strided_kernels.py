# SPDX-License-Identifier: Apache-2.0
"""llvm kernels taking their output as a view of rows any pitch apart (what cuda.wgmma kernels
with ``autokernel.out_row_pitch`` take), shared by the gate's and the measurer's tests."""

from tvm.script import tirx as T


def strided_gemm(
    m: int, n: int, k: int, in_dtype: str, *, defect: str = "", pitch_wanted=None, write_col=None
):
    """``C[m, n] = A[m, k] @ B[k, n]`` (fp32 C) with C's row pitch a parameter. ``defect``
    ``ignores-pitch`` writes C as if its rows were ``n`` apart; ``write_col``: each row's
    element in that column (past ``n``) is zeroed too, where the rows are wider (a kernel's
    scratch columns, or the caller's padding); ``pitch_wanted``: the kernel refuses any other
    pitch."""

    @T.prim_func(s_tir=True)
    def strided(a: T.handle, b: T.handle, c: T.handle):
        A = T.match_buffer(a, (m, k), in_dtype)
        B = T.match_buffer(b, (k, n), in_dtype)
        pitch = T.int32()
        C = T.match_buffer(c, (m, n), "float32", strides=(pitch, 1))
        if pitch_wanted is not None:
            assert pitch == pitch_wanted, "C: not the padded rows"
        flat = T.decl_buffer((m * pitch,), "float32", data=C.data)
        for i, j in T.grid(m, n):
            at = i * n + j if defect == "ignores-pitch" else i * pitch + j
            flat[at] = T.float32(0)
            for r in range(k):
                flat[at] = flat[at] + T.Cast("float32", A[i, r]) * T.Cast("float32", B[r, j])
            if write_col is not None:
                if j == n - 1:
                    if pitch > write_col:
                        flat[i * pitch + write_col] = T.float32(0)

    return strided
