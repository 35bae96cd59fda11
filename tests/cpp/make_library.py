# SPDX-License-Identifier: Apache-2.0
"""Export the small verified llvm library that the C++ tests load (ctest runs this first).

    python tests/cpp/make_library.py OUT_DIR

Writes ``OUT_DIR/kernels.so`` + ``kernels.so.json`` with two float32 kernels, ``gemm`` (A@B) and
``gemm_nt`` (A@B.T) at 128x96x64, untuned (the workload's own schedule with a parallel outer
loop, so the C++ loader must make TVM's thread pool reachable) and checked by
``autokernel_tvm.verify``: the results of ``tests/conftest.py``'s ``make_result``. Seconds.
Also ``OUT_DIR/plain.so``: a library that embeds no manifest, with a matching checksum; and
``OUT_DIR/cuda.so``: a CUDA kernel, CUDA source only where no GPU driver is present; and
``OUT_DIR/conv.so``: a verified stride-2 conv2d_nhwc, for the runner's conv baseline.

The manifest is format version 2: its ``sha256`` is the library's, and the library embeds the
rest of the manifest as ``const char* autokernel_manifest(void)`` (canonical JSON, sorted keys,
no spaces). Until ``autokernel_tvm.export`` writes version 2 itself, this script adds the symbol:
it exports once to learn the manifest, then exports again with a C object defining the symbol
linked in (``export_library(addons=...)``), and writes the manifest of the first export with the
second library's sha256.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import tvm  # noqa: E402

from autokernel_tvm.export import export  # noqa: E402

SHAPE = (128, 96, 64)  # M, N, K: not square, so a transposed operand shows up as a wrong shape
OPS = ("gemm", "gemm_nt")
CONV = (2, 9, 9, 8, 16, 3, 3, 2, 1)  # N, H, W, C, K, R, S, stride, pad: odd sizes, stride 2


def canonical(manifest: dict) -> str:
    """The string a version-2 library embeds: the manifest without ``sha256``, canonical JSON."""
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def embed_object(text: str, folder: str) -> str:
    """Compile a C object defining ``autokernel_manifest`` that returns ``text``."""
    src = os.path.join(folder, "autokernel_manifest.c")
    obj = os.path.join(folder, "autokernel_manifest.o")
    with open(src, "w") as f:
        f.write(
            '__attribute__((visibility("default"))) const char* autokernel_manifest(void) '
            f"{{ return {c_string(text)}; }}\n"
        )
    subprocess.run(["cc", "-c", "-fPIC", "-O1", src, "-o", obj], check=True)
    return obj


def export_v2(results, path: str, **kwargs) -> dict:
    """``export`` with the manifest embedded (version 2), whichever version export writes."""
    manifest = export(results, path, **kwargs)
    if manifest["format_version"] >= 2:
        return manifest  # autokernel_tvm.export embeds the manifest itself
    manifest["format_version"] = 2
    original = tvm.runtime.Executable.export_library
    with tempfile.TemporaryDirectory() as folder:
        obj = embed_object(canonical(manifest), folder)

        def with_manifest(self, file_name, **kwargs):
            kwargs["addons"] = [*(kwargs.get("addons") or []), obj]
            return original(self, file_name, **kwargs)

        tvm.runtime.Executable.export_library = with_manifest
        try:
            export(results, path, **kwargs)
        finally:
            tvm.runtime.Executable.export_library = original
    with open(path, "rb") as f:
        manifest["sha256"] = hashlib.sha256(f.read()).hexdigest()
    with open(path + ".json", "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    return manifest


def install() -> None:
    """Make ``autokernel_tvm.export.export`` write version 2 (for scripts/tune.py --export)."""
    importlib.import_module("autokernel_tvm.export").export = export_v2


def python_loadable(path: str, folder: str) -> str:
    """``path``, or a copy the Python loader reads while it only knows manifest version 1.

    The copy has the same library bytes (so the same sha256) and the manifest with
    ``format_version`` 1; the version-1 loader checks nothing else.
    """
    if importlib.import_module("autokernel_tvm.export").FORMAT_VERSION >= 2:
        return path
    os.makedirs(folder, exist_ok=True)
    copy = os.path.join(folder, os.path.basename(path))
    shutil.copyfile(path, copy)
    with open(path + ".json") as f:
        manifest = json.load(f)
    manifest["format_version"] = 1
    with open(copy + ".json", "w") as f:
        json.dump(manifest, f, indent=1)
    return copy


def write_plain(manifest: dict, path: str) -> None:
    """A library without the embedded manifest, beside a version-2 manifest with its sha256.

    What an older exporter (or another tool) leaves: the C++ loader must refuse it by name.
    """
    src = path[: -len(".so")] + ".c"
    with open(src, "w") as f:
        f.write("int autokernel_plain(void) { return 0; }\n")
    subprocess.run(["cc", "-shared", "-fPIC", src, "-o", path], check=True)
    os.remove(src)
    with open(path, "rb") as f:
        plain = {**manifest, "sha256": hashlib.sha256(f.read()).hexdigest()}
    with open(path + ".json", "w") as f:
        json.dump(plain, f, indent=1)


def cuda_result(make_result):
    """A CUDA gemm_nt (fp16, 64x48x32; one thread per output) as tests/test_export.py makes it.

    Without a GPU driver its export keeps CUDA source (``"device_code": "cuda-source"``), which
    the C++ loader must refuse by name; no GPU here runs the gate, so the report is a stand-in.
    """
    import dataclasses

    from autokernel_tvm.workloads import Workload

    workload = Workload("gemm_nt", (64, 48, 32), "float16")
    sch = tvm.s_tir.Schedule(workload.ir_module())
    i, j, _ = sch.get_loops(sch.get_sblock("C"))
    bx, tx = sch.split(sch.fuse(i, j), [None, 128])
    sch.bind(bx, "blockIdx.x")
    sch.bind(tx, "threadIdx.x")
    report = {"workload": workload.name, "passed": True, "checks": ["stand-in"], "failures": []}
    result = make_result(workload, run_verify=False)
    return dataclasses.replace(result, target="cuda", arch="sm_90a", mod=sch.mod, verify=report)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.exit("usage: python tests/cpp/make_library.py OUT_DIR")
    os.makedirs(argv[0], exist_ok=True)
    path = os.path.join(argv[0], "kernels.so")
    # The verified untuned kernels of tests/conftest.py (its make_result and parallel_rows).
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from conftest import make_result, parallel_rows

    from autokernel_tvm.workloads import Workload

    results = [make_result(Workload(op, SHAPE), parallel_rows) for op in OPS]
    manifest = export_v2(results, path)
    write_plain(manifest, os.path.join(argv[0], "plain.so"))
    export_v2(cuda_result(make_result), os.path.join(argv[0], "cuda.so"))
    # a strided conv whose ATen baseline (cuDNN's, on a GPU) the runner must match
    export_v2([make_result(Workload("conv2d_nhwc", CONV))], os.path.join(argv[0], "conv.so"))
    names = ", ".join(k["name"] for k in manifest["kernels"])
    print(f"wrote {path} (format_version {manifest['format_version']}): {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
