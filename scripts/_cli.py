# SPDX-License-Identifier: Apache-2.0
"""Argument checks shared by the scripts, run before TVM or torch is imported.

Every bad input ends as one line ``error: <argument or file>: <what is wrong and what to do>``
on stderr and exit status 2 (:func:`run`). Importing ``autokernel_tvm`` imports TVM (5-9 s on a
small machine), so this module knows the few facts it checks statically (:data:`OP_DIMS`,
:data:`TARGETS`...); ``tests/scripts/test_cli_fuzz.py`` checks that they agree with the package.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import signal
import sys
import tempfile

#: Workload ops and their shape dims (``autokernel_tvm.workloads.OPS``).
OP_DIMS = {
    "conv2d_nhwc": ("N", "H", "W", "C", "K", "R", "S", "stride", "pad"),
    "gemm": ("M", "N", "K"),
    "gemm_nt": ("M", "N", "K"),
    "gemm_tn": ("M", "N", "K"),
    "batch_gemm": ("B", "M", "N", "K"),
    "batch_gemm_nt": ("B", "M", "N", "K"),
    "batch_gemm_tn": ("B", "M", "N", "K"),
    "gemm_bias": ("M", "N", "K"),
    "gemm_bias_relu": ("M", "N", "K"),
    "gemm_bias_gelu": ("M", "N", "K"),
    "gemm_gated_nt": ("M", "N", "K"),
    "gemm_scaled_nt": ("M", "N", "K"),
}
#: ``autokernel_tvm.config.TARGETS`` / ``SPACES``, ``workloads.dtypes.DTYPES`` / ``FP8_DTYPES``,
#: ``targets.ROCM_ARCHES``, the CUDA SM versions of ``targets.CUDA_SMEM_PER_BLOCK``.
TARGETS = ("llvm", "cuda", "rocm")
SPACES = ("generative", "stock")
DTYPES = ("float32", "float16", "bfloat16")
FP8_DTYPES = ("float8_e4m3fn", "float8_e5m2")  # inputs of gemm_scaled_nt only
ROCM_ARCHES = ("gfx942", "gfx90a", "gfx908")
CUDA_SMS = (70, 75, 80, 86, 89, 90)
#: Dims that may be 0 (conv2d padding); every other dim must be >= 1.
ZERO_OK = {"pad"}
ELF_MAGIC = b"\x7fELF"


class CliError(Exception):
    """A bad input: ``str()`` is ``<argument or file>: <what is wrong and what to do>``."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")


class Parser(argparse.ArgumentParser):
    """``argparse`` whose errors raise :class:`CliError` (one line) instead of printing usage."""

    def error(self, message: str):
        where, _, what = message.partition(": ")
        if what == "expected one argument":
            # argparse reads "--shape -5,3,3" as two options; say how to pass such a value.
            option = where[len("argument ") :].split("/")[-1]
            what += f"; a value starting with '-' is read as an option: write {option}=VALUE"
        if where.startswith("argument "):
            raise CliError(where[len("argument ") :], what)
        raise CliError("arguments", f"{message}; see --help")


def run(main, argv=None, resumable: bool = True) -> int:
    """``main(argv)`` with :class:`CliError` printed as one line and exit status 2, and Ctrl-C
    (SIGINT) as one line and status 130 -- also where it arrived inside TVM's C++ code, which
    hands it back as another exception (tvm-ffi's RuntimeError)."""
    interrupted = []

    def on_sigint(signum, frame):
        interrupted.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        return main(argv)
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception:
        if not interrupted:
            raise
        return _interrupted(resumable)
    except KeyboardInterrupt:
        return _interrupted(resumable)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupted(resumable: bool) -> int:
    again = "; rerun the same command to resume from --work-dir" if resumable else ""
    print(f"error: interrupted{again}", file=sys.stderr)
    return 130


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
    return value


def seed(text: str) -> int:
    """argparse type: a random seed, 0 to 2**32 - 1 (what MetaSchedule takes)."""
    value = _int_at_least(text, 0)
    if value > 2**32 - 1:
        raise argparse.ArgumentTypeError(f"must be <= 2**32 - 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def parse_shape(text: str, op: str) -> tuple[int, ...]:
    """``"512,512,256"`` -> ``(512, 512, 256)``, checked against the dims of ``op``."""
    if op not in OP_DIMS:
        raise CliError("--op", f"unknown op {op!r}; known ops: {sorted(OP_DIMS)} (see --list-ops)")
    dims = OP_DIMS[op]
    if not isinstance(text, str):  # argparse turns "--shape=--" into an empty list
        text = ",".join(map(str, text))
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != len(dims):
        raise CliError(
            "--shape",
            f"{op} takes shape {','.join(dims)} ({len(dims)} integers), got {text!r}",
        )
    shape = []
    for name, part in zip(dims, parts, strict=True):
        if not re.fullmatch(r"[+-]?[0-9]+", part):  # ASCII: int() also reads "٣" as 3
            raise CliError(
                "--shape", f"{name}={part!r} is not an integer (e.g. --shape 512,512,512)"
            )
        value, low = int(part), 0 if name in ZERO_OK else 1
        if value < low:
            raise CliError("--shape", f"{name}={value} must be >= {low}")
        if value > 1 << 31:
            raise CliError("--shape", f"{name}={value} is larger than 2^31")
        shape.append(value)
    return tuple(shape)


def check_arch(target: str, arch: str | None) -> None:
    """--arch names a CUDA ``sm_XY[a]`` or a ROCm ``gfxNNN``; llvm takes none."""
    if arch is None:
        return
    if target == "llvm":
        raise CliError(
            "--arch",
            f"{arch!r} given for --target llvm; --arch is for cuda (sm_90a...) and rocm "
            "(gfx942...): CPU kernels are built for this machine's CPU, drop --arch",
        )
    if target == "cuda":
        match = re.fullmatch(r"sm_(\d+)(a?)", arch)
        if not match or int(match.group(1)) not in CUDA_SMS:
            raise CliError(
                "--arch",
                f"{arch!r} is not a CUDA arch this project builds for; use one of "
                f"{', '.join(f'sm_{s}' for s in CUDA_SMS)} (sm_90a for Hopper's wgmma/TMA)",
            )
        if match.group(2) and int(match.group(1)) != 90:
            raise CliError("--arch", f"{arch!r}: only sm_90a has an arch-specific 'a' variant")
    if target == "rocm" and arch not in ROCM_ARCHES:
        raise CliError("--arch", f"{arch!r} is not a ROCm arch; use one of {ROCM_ARCHES}")


def check_work_dir(where: str, path: str | None) -> None:
    """A directory that exists, or can be created, and is writable."""
    if path is None:
        return
    if os.path.exists(path) and not os.path.isdir(path):
        raise CliError(where, f"{path} is a file, not a directory; pass a directory")
    _check_writable_dir(where, path, os.path.abspath(path))


def check_output_file(where: str, path: str | None) -> None:
    """A file path whose folder exists (or can be created) and is writable, not a directory."""
    if path is None:
        return
    if not path or path.endswith(os.sep) or os.path.isdir(path):
        raise CliError(where, f"{path!r} is a directory; pass a file path such as out/gemm.so")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise CliError(where, f"{path} exists and is not writable; choose another path")
    _check_writable_dir(where, path, os.path.dirname(os.path.abspath(path)))


def _check_writable_dir(where: str, path: str, folder: str) -> None:
    """Create and remove a probe file in ``folder`` or its nearest existing ancestor.

    ``os.access`` says yes to root everywhere, also in /proc; only a real write tells.
    """
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise CliError(where, f"{path}: {existing} is a file, so the folder cannot be created")
    try:
        fd, probe = tempfile.mkstemp(prefix=".ak_probe_", dir=existing)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise CliError(
            where, f"{path}: cannot write in {existing} ({reason}); choose another path"
        ) from None


def check_problem_file(path: str) -> None:
    """A readable Python file that parses and defines Model, get_inputs, get_init_inputs."""
    source = read_text(path, "--problem", "a problem file (Model, get_inputs, get_init_inputs)")
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as err:
        raise CliError(
            "--problem", f"{path}: line {err.lineno}: syntax error: {err.msg}; fix the file"
        ) from None
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    missing = [n for n in ("Model", "get_inputs", "get_init_inputs") if n not in names]
    if missing:
        raise CliError("--problem", f"{path} does not define {missing} (KernelBench format)")


def read_text(path: str, where: str, what: str) -> str:
    """The UTF-8 text of ``path``; one clear error when it is missing, a folder or binary."""
    if not os.path.exists(path):
        raise CliError(where, f"{path}: no such file; pass {what}")
    if os.path.isdir(path):
        raise CliError(where, f"{path} is a directory; pass {what}")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError:
        raise CliError(where, f"{path} is not a text file; pass {what}") from None
    except OSError as err:
        raise CliError(where, f"{path}: cannot read ({err.strerror}); pass {what}") from None


def check_library_file(path: str) -> None:
    """An exported library: an ELF file with its ``.json`` manifest beside it."""
    what = "the .so written by export (its .so.json beside it)"
    if path.endswith(".json"):
        raise CliError(path, f"this is the manifest; pass the library {path[: -len('.json')]}")
    if not os.path.exists(path):
        raise CliError(path, f"no such file; pass {what}")
    if os.path.isdir(path):
        raise CliError(path, f"is a directory; pass {what}")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        raise CliError(path, f"cannot read ({err.strerror}); pass {what}") from None
    if head != ELF_MAGIC:
        raise CliError(path, f"not a shared library (no ELF header); pass {what}")
    if not os.path.isfile(path + ".json"):
        raise CliError(path, f"no manifest {path}.json beside it; re-export the library")


def env_vars() -> dict:
    """``autokernel_tvm.config.ENV_VARS``, read from config.py's source (a dict literal).

    ``import autokernel_tvm.config`` would run the package's ``__init__``, which imports TVM.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "autokernel_tvm", "config.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        target = getattr(node, "target", None) or (getattr(node, "targets", None) or [None])[0]
        if isinstance(target, ast.Name) and target.id == "ENV_VARS":
            return ast.literal_eval(node.value)
    return {}
