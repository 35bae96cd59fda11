# SPDX-License-Identifier: Apache-2.0
"""Export verified kernels as one shared library plus a JSON manifest.

Read first: :func:`export`. Every :class:`~autokernel_tvm.tuner.TuneResult` holds one scheduled
PrimFunc ``main``; each is renamed to its workload name, all are merged into one IRModule, built
once with :func:`~autokernel_tvm.builder.build_module` and written with ``export_library``. The
manifest (``<path>.json``) says what every kernel computes, where it runs, how fast it was
measured, that it passed the correctness gate, and the sha256 of the library; the same manifest
(minus the sha256) is compiled into the library as ``autokernel_manifest()``, and
:func:`autokernel_tvm.torch.load` checks both before loading (:mod:`autokernel_tvm.manifest`).

CUDA on a machine without a GPU driver: TVM 0.27 then leaves the device code as CUDA source (a
``CUDAFallbackModule``; TVM-0.27-NOTES §3) and the export still succeeds, but the library only
loads on a machine with a CUDA driver, where TVM compiles the embedded source at load time
through ``tvm_callback_cuda_compile`` (NVRTC by default, which needs the ``cuda-bindings``
package; ``TVM_CUDA_COMPILE_MODE=nvcc`` uses nvcc). The manifest records this as
``"device_code": "cuda-source"``.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import os
import shutil
import tempfile

import tvm

from . import builder as build_lib
from . import manifest as manifest_lib
from .manifest import FORMAT, FORMAT_VERSION, file_sha256
from .targets import make_target

__all__ = ["FORMAT", "FORMAT_VERSION", "ExportError", "export", "file_sha256", "load_manifest"]


class ExportError(ValueError):
    """Results that cannot be exported together; the message says which and why."""


def export(
    results, path: str | os.PathLike, *, check_nvcc: bool = False, sanitize: bool = True
) -> dict:
    """Build every result's kernel into one shared library and write its manifest.

    Parameters
    ----------
    results : TuneResult or iterable of TuneResult
        Verified kernels, all for the same target kind and arch. Each kernel is named after its
        workload (``Workload.name``); names must be unique.
    path : str or PathLike
        The library to write (``.so``); the manifest goes to ``path + ".json"``.
    check_nvcc : bool
        For CUDA on a machine without a GPU driver: compile the device source with nvcc too, so
        that a kernel nvcc rejects fails here instead of at load time on the GPU machine.
    sanitize : bool
        For CUDA on a GPU with ``compute-sanitizer``: run memcheck and racecheck on one call of
        every kernel before it ships (a kernel with an error is refused); the result is in the
        manifest's ``sanitizer`` field (``skipped: ...`` where the tool or the GPU is missing).

    Returns
    -------
    dict
        The manifest that was written.

    Raises
    ------
    ExportError
        No results, a result whose ``verify`` report is missing or did not pass, duplicate
        kernel names, or results for different targets.
    """
    results = [results] if hasattr(results, "workload") else list(results)
    if not results:
        raise ExportError("nothing to export: got an empty list of results")
    names = [_check_result(r) for r in results]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ExportError(f"duplicate kernel names {dupes}: export each workload once")
    targets = {(r.target, r.arch) for r in results}
    if len(targets) != 1:
        raise ExportError(f"all results must share one target and arch, got {sorted(targets)}")
    kind, arch = targets.pop()
    target = make_target(kind, arch)

    funcs = {name: _kernel_func(r.mod, name) for name, r in zip(names, results, strict=True)}
    for r in results:
        funcs.update(build_lib.companions(r.mod))
    exe = build_lib.build_module(tvm.IRModule(funcs), target, check_nvcc=check_nvcc)
    device_code = _device_code(exe, kind)

    path = os.fspath(path)
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library": os.path.basename(path),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tvm_version": tvm.__version__,
        "tvm_ffi_version": _tvm_ffi_version(),
        "target": {"kind": kind, "arch": arch or _target_arch(target), "spec": str(target)},
        "device_code": device_code,
        "kernels": [
            _kernel_entry(r, name, funcs[name], target)
            for name, r in zip(names, results, strict=True)
        ],
    }
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if kind == "cuda" and sanitize:
        body["sanitizer"] = _sanitize(exe, body, folder)
    # Write next to the destination, then rename: a failed export never clobbers a library, and
    # a crash between the .so and the manifest shows up as a checksum mismatch at load.
    with tempfile.TemporaryDirectory(prefix="ak_export_", dir=folder) as work:
        tmp = _write_library(exe, body, work)
        os.replace(tmp, path)
    return manifest_lib.write(path, body)


def _write_library(exe, body: dict, work: str) -> str:
    """``<work>/library.so`` with ``body`` embedded (the manifest minus the library's sha256)."""
    source = os.path.join(work, "autokernel_manifest.c")
    with open(source, "w") as f:
        f.write(manifest_lib.embed_source(body))
    tmp = os.path.join(work, "library.so")
    exe.export_library(tmp, addons=[source], workspace_dir=work)
    return tmp


def _sanitize(exe, body: dict, folder: str) -> dict:
    """compute-sanitizer (memcheck, racecheck) on one call of every kernel, from a trial export;
    a kernel with an error is refused. ``{"status": "skipped: ..."}`` without the tool or a GPU."""
    from . import verify as verify_lib

    if shutil.which("compute-sanitizer") is None or not tvm.cuda(0).exist:
        return {"status": "skipped: no compute-sanitizer/GPU"}
    with tempfile.TemporaryDirectory(prefix="ak_sanitize_", dir=folder) as work:
        trial = _write_library(exe, body, work)
        manifest_lib.write(trial, body)
        results = {k["name"]: verify_lib.sanitize(trial, k["name"]) for k in body["kernels"]}
    failed = {name: r for name, r in results.items() if r.get("status") != "passed"}
    if failed:
        raise ExportError(f"compute-sanitizer refused {sorted(failed)}: {failed}")
    return {"status": "passed", "kernels": results}


def load_manifest(path: str | os.PathLike) -> dict:
    """Read the manifest of a library (``path`` is the ``.so`` or its ``.so.json``).

    Raises
    ------
    autokernel_tvm.manifest.ManifestError
        No manifest, not an autokernel-tvm manifest, or another format version.
    """
    return manifest_lib.read(path)


# ------------------------------------------------------------------------------------------


def _check_result(result) -> str:
    """The kernel name of ``result``; refuse anything that did not pass the correctness gate."""
    name = result.workload.name
    report = result.verify
    if not report:
        raise ExportError(
            f"{name}: refusing to export a kernel without a verify report; run it through "
            "autokernel_tvm.verify.verify first"
        )
    if not report.get("passed"):
        failures = "; ".join(report.get("failures") or []) or "no reason recorded"
        raise ExportError(f"{name}: refusing to export a kernel that failed verify: {failures}")
    if report.get("workload", name) != name:
        raise ExportError(
            f"{name}: the verify report is for {report['workload']!r}, not for this workload"
        )
    return name


def _kernel_func(mod: tvm.IRModule, name: str) -> tvm.tirx.PrimFunc:
    funcs = {gv.name_hint: f for gv, f in mod.functions.items()}
    if "main" in funcs:  # the rest are its companions (builder.companions)
        func = funcs["main"]
    elif len(funcs) == 1:
        func = next(iter(funcs.values()))
    else:
        raise ExportError(
            f"{name}: expected one PrimFunc 'main' in the module, got {sorted(funcs)}"
        )
    return func.with_attr("global_symbol", name)


def _kernel_entry(result, name: str, func, target) -> dict:
    latency = result.latency_s
    measured = latency is not None and math.isfinite(latency) and latency > 0
    verify = result.verify
    return {
        **result.workload.to_json(),
        "name": name,
        "target": target.kind.name,
        "arch": result.arch or _target_arch(target),
        "latency_us": latency * 1e6 if measured else None,
        "tflops": result.tflops if measured else None,
        "trials": int(result.trials),
        "tune_seconds": getattr(result, "tune_seconds", None),
        "space": getattr(result, "space", None),
        "genome": getattr(result, "genome", None),  # {family, params} of the winner
        "verify": {
            "passed": bool(verify.get("passed")),
            "checks": list(verify.get("checks", [])),
            "max_error_ratio": verify.get("max_error_ratio"),
        },
        # Identifies the scheduled code, so that two libraries with an equal entry really hold
        # the same kernel (the torch loader reuses an op only then).
        "tir_sha256": hashlib.sha256(func.script().encode()).hexdigest(),
        # the row pitch of padded output rows the kernel stores into directly (loaders allocate
        # them); absent: a plain output
        **_out_pitch(func),
    }


def _out_pitch(func) -> dict:
    pitch = manifest_lib.out_pitch(func)
    return {} if pitch is None else {manifest_lib.OUT_PITCH: pitch}


def _device_code(exe, kind: str) -> str:
    """``host`` (CPU code only), ``binary`` (GPU binary embedded) or ``<kind>-source``."""
    if kind == "llvm":
        return "host"
    devices = [m for m in exe.mod.imports if kind in m.kind]  # cuda / cuda_fallback, rocm / hip
    # A device module compiled to a binary is runnable (TVM 0.27's CUDAModule lists no write
    # formats; a source-only fallback, built without a driver, is not runnable).
    if devices and all(m.is_runnable() or m.get_write_formats() for m in devices):
        return "binary"
    return f"{kind}-source"


def _target_arch(target) -> str | None:
    for key in ("arch", "mcpu"):
        if key in target.attrs:
            return str(target.attrs[key])
    return None


def _tvm_ffi_version() -> str:
    import tvm_ffi

    return str(getattr(tvm_ffi, "__version__", "unknown"))
