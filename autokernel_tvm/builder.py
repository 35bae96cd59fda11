# SPDX-License-Identifier: Apache-2.0
"""One build function for every kernel, and a persistent MetaSchedule builder pool.

Why not the stock ``LocalBuilder``: it starts a new process pool for every batch and each worker
imports ``tvm.s_tir.tensor_intrin`` (15-33 s), so on small machines whole batches time out
(TVM-0.27-NOTES §1; measured: 0.09 trials/s vs 2.0 with a lean build). Our pool starts once per
tuner and its workers import only what the target needs, once. The CUDA flags fix the stock
tensor-core path: ``tirx.use_async_copy`` (else no cp.async) and ``disable_storage_rewrite``
(else fp16->fp32 wmma fails ``tvm_access_ptr element type must match``).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections import OrderedDict
from collections.abc import Sequence

import tvm
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms

from .config import fault_point

CUDA_PASS_CONFIG = {"tirx.use_async_copy": 1}
_IN_WORKER = False  # set in builder worker processes (fault points tell the two apart)
#: Only for wmma kernels (the stock space): StorageRewrite merges their f16/f32 buffers and
#: breaks tvm_access_ptr; mma.sync kernels need StorageRewrite (else LowerWarpMemory fails).
WMMA_PASS_CONFIG = {"tirx.disable_storage_rewrite": True}


class BuildError(RuntimeError):
    """A kernel failed to build; the message carries the compiler's reason."""


def pass_config(target: tvm.target.Target, mod: tvm.IRModule | None = None) -> dict:
    if target.kind.name != "cuda":
        return {}
    uses_wmma = mod is not None and "wmma." in mod.script(show_meta=False)
    return {**CUDA_PASS_CONFIG, **(WMMA_PASS_CONFIG if uses_wmma else {})}


def build_module(mod: tvm.IRModule, target: tvm.target.Target, check_nvcc: bool = False):
    """Compile a scheduled module for ``target`` with the project's pass config.

    With ``check_nvcc`` and a CUDA target whose device code was left as source (a machine without
    libcuda), the CUDA source is compiled with nvcc so that a kernel nvcc rejects fails here.
    """
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    if not _IN_WORKER:
        fault_point("compile")
    if is_tirx(mod):  # a whole TIRx kernel (cuda.wgmma): TVM's tirx pipeline lowers it
        exe = tvm.compile(mod, target=target, tir_pipeline="tirx")
        if check_nvcc and not has_gpu_binary(exe):
            nvcc_compile(cuda_source(exe), target.attrs["arch"])
        return exe
    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    if target.kind.name == "rocm":
        from .families.rocm_mfma.build import (
            build_rocm,  # works around LowerWarpMemory bugs of 0.27
        )

        return build_rocm(mod, target)
    with tvm.transform.PassContext(opt_level=3, config=pass_config(target, mod)):
        exe = tvm.compile(mod, target=target)
    if check_nvcc and target.kind.name == "cuda" and not has_gpu_binary(exe):
        nvcc_compile(cuda_source(exe), target.attrs["arch"])
    return exe


def companions(mod: tvm.IRModule) -> dict:
    """The functions of a kernel's module other than ``main``, by symbol: what its host code
    calls by name (``cuda.wgmma``'s row-padding copies and split-K reduction, named after the
    workload), linked wherever ``main`` goes."""
    return {gv.name_hint: f for gv, f in mod.functions.items() if gv.name_hint != "main"}


def is_tirx(mod: tvm.IRModule) -> bool:
    """Whether ``mod`` holds a kernel written in TIRx (marked by the family that made it)."""
    from .families.cuda_wgmma.structure import PIPELINE_ATTR

    return any(
        func.attrs is not None and func.attrs.get(PIPELINE_ATTR) == "tirx"
        for func in mod.functions.values()
    )


def cuda_source(exe) -> str:
    """The CUDA C source of a built executable's device module."""
    for sub in exe.mod.imports:
        if sub.kind in ("cuda", "cuda_fallback") or "cuda" in sub.kind:
            return sub.inspect_source()
    raise BuildError("executable has no CUDA device module")


def has_gpu_binary(exe) -> bool:
    return any(sub.kind == "cuda" and sub.get_write_formats() for sub in exe.mod.imports)


#: nvcc's results in this process, newest last: (cubin, ptxas's resource report) by source, arch
#: and options. A build that checks its CUDA with nvcc and then asks how many registers the
#: kernel took compiled the same source twice (127 of the first 312 compiles of the CPU tests).
_NVCC_RESULTS: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
NVCC_RESULTS_KEPT = 32


def nvcc_compile(source: str, arch: str, options: Sequence[str] = ()) -> bytes:
    """Compile CUDA source to a cubin with nvcc; raise :class:`BuildError` with nvcc's message."""
    return _nvcc(source, arch, tuple(options))[0]


def ptxas_report(source: str, arch: str, options: Sequence[str] = ()) -> str:
    """ptxas's resource report (``-v``: registers, spilled bytes, shared memory, per kernel) for
    CUDA ``source``, compiled as :func:`nvcc_compile` compiles it (once for both)."""
    return _nvcc(source, arch, tuple(options))[1]


def ptxas_usage(source: str, arch: str, kernel: str = "main_kernel") -> dict:
    """Registers a thread and bytes spilled of ``kernel`` (the first kernel whose name contains
    it) in :func:`ptxas_report`; None for either where ptxas reports no such kernel."""
    text = ptxas_report(source, arch)
    text = text[text.find(kernel) :] if kernel in text else ""
    regs = re.search(r"Used (\d+) registers", text)
    spill = re.search(r"(\d+) bytes spill stores", text)
    return {
        "registers": int(regs.group(1)) if regs else None,
        "spill_bytes": int(spill.group(1)) if spill else None,
    }


def _nvcc(source: str, arch: str, options: tuple) -> tuple[bytes, str]:
    key = hashlib.sha256("\0".join((source, arch, *options)).encode()).hexdigest()
    if key in _NVCC_RESULTS:
        _NVCC_RESULTS.move_to_end(key)
        return _NVCC_RESULTS[key]
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        raise BuildError("nvcc not found on PATH: install the CUDA toolkit to build CUDA kernels")
    code = arch if arch.startswith("sm_") else f"sm_{arch}"
    gencode = f"-gencode=arch=compute_{code[3:]},code={code}"
    with tempfile.TemporaryDirectory() as tmp:
        src, out = os.path.join(tmp, "k.cu"), os.path.join(tmp, "k.cubin")
        with open(src, "w") as f:
            f.write(source)
        cmd = [nvcc, "-cubin", "-O3", gencode, "-Xptxas", "-v", *options, "-o", out, src]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError("nvcc: " + _first_error(proc.stderr or proc.stdout))
        with open(out, "rb") as f:
            result = f.read(), proc.stderr + proc.stdout
    _NVCC_RESULTS[key] = result
    while len(_NVCC_RESULTS) > NVCC_RESULTS_KEPT:
        _NVCC_RESULTS.popitem(last=False)
    return result


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if "error" in line:
            return line.strip()[:300]
    return text.strip()[-300:]


def failure_reason(message: str) -> str:
    """A short, countable reason from a build/run error message."""
    text = str(message)
    if "Timeout" in text or "timed out" in text:
        return "timeout"
    remote = "caught from RPC call"
    if remote in text:  # the server's own error ends the traceback it sent back
        rest = text.split(remote, 1)[1].lstrip(":")
        return "RPC server: " + (_error_line(rest, last=True) or "no reason sent")
    nvcc = re.search(r"nvcc: .*?error[^:]*: ([^\n]{0,80})", text)
    if nvcc:
        return _countable(nvcc.group(1))
    return _error_line(text, last=False) or "unknown"


def _error_line(text: str, last: bool) -> str:
    """The first (or last) ``Error: ...`` message of ``text``, else its last non-empty line."""
    errors = re.findall(r"(?:Error|error): ([^\n]{0,80})", text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    found = errors[-1 if last else 0] if errors else (lines[-1][:80] if lines else "")
    return _countable(found)


def _countable(reason: str) -> str:
    """Digits folded to N, so one failure with different sizes counts as one reason."""
    return re.sub(r"\d+", "N", reason).strip()


# ------------------------------------------------------------------------------------------
# Builder pool (runs in worker processes)


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux ``PR_SET_PDEATHSIG``).

    A worker otherwise outlives a killed tuner until its current job ends (seen: ~10 s). The
    signal fires when the parent *thread* exits; PopenPoolExecutor's threads live as long as the
    pool, so this only fires with the pool's owner gone.
    """
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before the call: nobody will signal us
        os._exit(1)


def _worker_init(target_kind: str) -> None:
    """Import, once per worker, what building this target's candidates needs.

    CUDA mma candidates need the index maps that ``tensor_intrin.cuda`` registers at import
    (``MmaBufferLayoutTransformer``), and our own intrinsics for bf16.
    """
    global _IN_WORKER
    _IN_WORKER = True  # fault points tell the tuner process from its builders
    die_with_parent()
    if target_kind == "cuda":
        from . import intrin

        intrin.import_stock_intrinsics()
        intrin.register_all()
    elif target_kind == "rocm":
        from .families.rocm_mfma import build  # noqa: F401  (registers the MFMA TIR pipeline)


def _ready() -> None:
    """A worker's first job when warming a pool: nothing beyond its start and initializer."""


def _worker_build(
    mod, target, check_nvcc: bool, root: str | None = None, shared: bool = False
) -> str:
    """Build ``mod`` and export it: a tar of objects (what MetaSchedule's runner links and
    loads), or (``shared``) a linked library, loaded as it is."""
    from tvm.support.tar import tar

    fault_point("worker-build")
    exe = build_module(mod, target, check_nvcc=check_nvcc)
    folder = tempfile.mkdtemp(prefix="ak_build_", dir=root)
    if shared:  # linked here, in the worker, so that loading it is a dlopen
        path = os.path.join(folder, "mod.so")
        exe.export_library(path)
    else:
        path = os.path.join(folder, "mod." + tar.output_format)
        exe.export_library(path, fcompile=tar)
    return path


@derived_object
class PoolBuilder(ms.builder.PyBuilder):
    """A MetaSchedule builder whose worker processes live as long as the builder.

    Parameters
    ----------
    target_kind : str
        ``llvm``, ``cuda`` or ``rocm``: picks what the workers import once.
    max_workers : int
        Worker processes (0: CPU count).
    timeout_s : float
        Per-candidate build timeout; a timed-out worker is restarted.
    check_nvcc : bool
        For CUDA without a GPU driver: compile each candidate's source with nvcc too.
    strict : bool
        Re-raise the first build failure (debugging) instead of scoring it as failed.
    """

    def __init__(
        self,
        target_kind: str,
        max_workers: int = 0,
        timeout_s: float = 120.0,
        check_nvcc: bool = False,
        strict: bool = False,
    ):
        super().__init__()
        self.strict = strict
        from tvm.support.popen_pool import PopenPoolExecutor

        _export_sys_path()
        self.check_nvcc = check_nvcc
        # Every candidate's artifact goes under one folder, removed at shutdown or exit; one
        # left by a killed run (its pid is in the name) is removed by the next builder.
        _remove_stale_build_roots()
        self.root = tempfile.mkdtemp(prefix=f"{BUILD_ROOT_PREFIX}{os.getpid()}_")
        atexit.register(shutil.rmtree, self.root, True)
        self.pool = PopenPoolExecutor(
            max_workers=max_workers or os.cpu_count() or 1,
            timeout=timeout_s,
            initializer=_worker_init,
            initargs=(target_kind,),
        )

    def build(self, build_inputs: list) -> list:
        futures = [
            self.pool.submit(_worker_build, bi.mod, bi.target, self.check_nvcc, self.root)
            for bi in build_inputs
        ]
        fault_point("build")
        results = []
        for future in futures:
            try:
                results.append(ms.builder.BuilderResult(future.result(), None))
            except Exception as err:  # a failed candidate is data, not a crash
                if self.strict:
                    raise
                results.append(ms.builder.BuilderResult(None, f"{type(err).__name__}: {err}"))
        return results

    def warm(self, workers: int) -> None:
        """Start ``workers`` worker processes now, in the background, so that the first
        candidates' builds find them ready: a worker's start (TVM, torch and the intrinsics
        imported) took most of a run's first build batch (20 s of a 1-row GEMV's 25 s of
        tuning on the H100), and overlaps the model's import and the search's first
        proposals this way. Each no-op job holds its pool thread until its worker is up, so
        ``workers`` jobs start that many."""
        for _ in range(workers):
            self.pool.submit(_ready)

    def submit(self, mod, target):
        """Build ``mod`` (a whole kernel) in a worker into a shared library; a future of its
        path."""
        return self.pool.submit(_worker_build, mod, target, self.check_nvcc, self.root, True)

    def shutdown(self) -> None:
        self.pool.shutdown()
        shutil.rmtree(self.root, ignore_errors=True)


BUILD_ROOT_PREFIX = "ak_builds_"


def _remove_stale_build_roots() -> None:
    """Remove build folders of processes that no longer exist (a tuner killed with -9)."""
    base = tempfile.gettempdir()
    for name in os.listdir(base):
        pid = name[len(BUILD_ROOT_PREFIX) :].split("_")[0]
        if not name.startswith(BUILD_ROOT_PREFIX) or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


def _export_sys_path() -> None:
    """Worker processes must import this package from wherever the parent did."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if here not in parts:
        parts.insert(0, here)
    os.environ["PYTHONPATH"] = os.pathsep.join(parts)
