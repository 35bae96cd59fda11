# SPDX-License-Identifier: Apache-2.0
"""llvm kernels taking their output as a view of rows any pitch apart (what cuda.wgmma kernels
with ``autokernel.out_row_pitch`` take), shared by the gate's and the measurer's tests."""

from tvm.script import tirx as T


def strided_gemm(m: int, n: int, k: int, in_dtype: str, *, defect: str = "", pitch_wanted=None):
    """``C[m, n] = A[m, k] @ B[k, n]`` (fp32 C) with C's row pitch a parameter. ``defect``:
    ``ignores-pitch`` writes C as if its rows were ``n`` apart, ``writes-padding`` also zeroes
    the first element of each row past its last 16-byte granule, ``writes-granule`` the last
    element of that granule (as the TMA store does); ``pitch_wanted``: the kernel refuses any
    other pitch."""
    granule_end = -(-n // 4) * 4  # fp32 C: 4 elements a granule
    pad_col = {"writes-padding": granule_end, "writes-granule": granule_end - 1}.get(defect)

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
            if pad_col is not None and pad_col >= n:
                if j == n - 1:
                    if pitch > pad_col:
                        flat[i * pitch + pad_col] = T.float32(0)

    return strided
