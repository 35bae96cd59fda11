# SPDX-License-Identifier: Apache-2.0
"""Fuzzing the user-facing inputs: generated bad CLI arguments, shapes and edited manifests.

Every bad input must end as one line ``error: <argument or file>: ...`` and exit status 2 (the
scripts' argument checks run in-process here: they import neither TVM nor torch), every edited
manifest as a ``LibraryError``; never a traceback, never silently accepted. A few real
subprocess runs check the same end to end, and that ``--help`` imports neither TVM nor torch.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(ROOT, "scripts")


def _script(name: str):
    if SCRIPTS not in sys.path:
        sys.path.insert(0, SCRIPTS)
    spec = importlib.util.spec_from_file_location(f"_ak_script_{name}", f"{SCRIPTS}/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tune, bench = _script("tune"), _script("bench")
cli = sys.modules["_cli"]


def _run_main(script, argv, capsys) -> str:
    """``script.main(argv)`` must return 2 with one ``error: `` line on stderr; return it.

    ``parse_args`` must refuse first: an input it accepted would start a real run here.
    """
    with pytest.raises(cli.CliError):
        script.parse_args(argv)
    code = script.main(argv)
    err = capsys.readouterr().err
    assert code == 2, (argv, code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err)
    assert "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------------------------------------
# Shapes: a generated token list checked against an independent oracle.


def _random_token(rng: random.Random) -> str:
    kind = rng.randrange(9)
    return [
        lambda: str(rng.randint(1, 4096)),  # valid
        lambda: str(rng.randint(-4096, 0)),  # zero or negative
        lambda: f"{rng.uniform(0.1, 99):.2f}",  # float
        lambda: rng.choice(["abc", "x", "M", "nan", "inf", "1e3", "0x10", "", " ", "٣"]),
        lambda: str(rng.randint(2**31 + 1, 2**64)),  # overflow
        lambda: str(rng.randint(1, 64)),
        lambda: str(rng.randint(1, 64)),
        lambda: rng.choice(["-", "+", "--", "1,", ";"]),
        lambda: str(rng.randint(1, 8)),
    ][kind]()


def _valid_dim(name: str, token: str) -> bool:
    token = token.strip()
    if not token.lstrip("+-").isdigit() or not token.lstrip("+-").isascii():
        return False
    value = int(token)
    return (0 if name == "pad" else 1) <= value <= 2**31


CASES = []
_rng = random.Random(16)
for _ in range(400):
    op = _rng.choice([*cli.OP_DIMS, "matmul", "GEMM", ""])
    arity = len(cli.OP_DIMS.get(op, "MNK")) + _rng.choice([0, 0, 0, -1, 1, -2, 3])
    CASES.append((op, ",".join(_random_token(_rng) for _ in range(max(arity, 1)))))


@pytest.mark.parametrize("op, shape", CASES[:400])
def test_generated_shapes(op, shape, capsys, tmp_path):
    argv = ["--op", op, f"--shape={shape}", "--work-dir", str(tmp_path)]
    dims = cli.OP_DIMS.get(op)
    parts = shape.split(",")
    valid = (
        dims is not None
        and len(parts) == len(dims)
        and all(_valid_dim(d, t) for d, t in zip(dims, parts, strict=True))
    )
    if valid:
        args = tune.parse_args(argv)
        assert args.dims == tuple(int(t) for t in parts)
        return
    line = _run_main(tune, argv, capsys)
    assert line.startswith("error: --op:" if dims is None else "error: --shape:"), line


# ---------------------------------------------------------------------------------------------
# Other arguments of tune.py and bench.py.


def _bad_tune_arguments(tmp_path) -> list[tuple[list[str], str]]:
    file = tmp_path / "a_file"
    file.write_text("x")
    return [
        (["--shape", "abc"], "--shape: gemm takes shape M,N,K"),
        (["--shape", "-5,3,3"], "write --shape=VALUE"),
        (["--shape=-5,3,3"], "--shape: M=-5 must be >= 1"),
        (["--shape", "4,4"], "takes shape M,N,K (3 integers)"),
        (["--op", "conv2d_nhwc", "--shape", "1,8,8,4,4,3,3"], "9 integers"),
        (["--op", "matmul"], "--op: unknown op 'matmul'"),
        (["--work-dir", str(file)], "--work-dir: " + str(file) + " is a file"),
        (["--work-dir", str(file / "sub")], "is a file, so the folder cannot be created"),
        (["--export", "/proc/x.so"], "--export: /proc/x.so: cannot write in /proc"),
        (["--export", str(tmp_path)], "--export: " + repr(str(tmp_path)) + " is a directory"),
        (["--export", str(file / "x.so")], "cannot be created"),
        (["--report", "/proc/r.json"], "--report: /proc/r.json: cannot write"),
        (["--arch", "foo"], "--arch: 'foo' given for --target llvm"),
        (["--arch", "znver3"], "--arch is for cuda"),
        (["--target", "cuda", "--arch", "foo"], "--arch: 'foo' is not a CUDA arch"),
        (["--target", "cuda", "--arch", "sm_91"], "is not a CUDA arch"),
        (["--target", "cuda", "--arch", "sm_80a"], "only sm_90a"),
        (["--target", "rocm", "--arch", "sm_90a"], "--arch: 'sm_90a' is not a ROCm arch"),
        (["--target", "tpu"], "--target: invalid choice: 'tpu'"),
        (["--dtype", "int8"], "--dtype: invalid choice"),
        (["--out-dtype", "float64"], "--out-dtype: invalid choice"),
        (["--space", "magic"], "--space: invalid choice"),
        (["--trials", "0"], "--trials: must be >= 1, got 0"),
        (["--trials", "-3"], "--trials: must be >= 1, got -3"),
        (["--trials", "ten"], "--trials: 'ten' is not an integer"),
        (["--trials-per-iter", "0"], "--trials-per-iter: must be >= 1"),
        (["--build-workers=-1"], "--build-workers: must be >= 0"),
        (["--build-only", "x"], "--build-only: 'x' is not an integer"),
        (["--seed", "1.5"], "--seed: '1.5' is not an integer"),
        (["--seed", str(2**32)], "--seed: must be <= 2**32 - 1"),
        (["--problem", str(tmp_path / "none.py")], "--problem: " + str(tmp_path / "none.py")),
        (["--problem", str(tmp_path)], "is a directory; pass a problem file"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["--shape"], "--shape: expected one argument"),
        (["positional"], "unrecognized arguments: positional"),
    ]


def test_bad_tune_arguments(tmp_path, capsys):
    for argv, message in _bad_tune_arguments(tmp_path):
        line = _run_main(tune, argv, capsys)
        assert message in line, (argv, line)


@pytest.mark.parametrize(
    "source, message",
    [
        ("class Model(:\n", "line 1: syntax error"),
        ("import torch\n\ndef get_inputs():\n    return [\n", "line 4: syntax error"),
        ("import torch\nclass Model: pass\n", "does not define ['get_inputs', 'get_init_inputs']"),
        (b"\xff\xfe\x00binary", "is not a text file"),
    ],
    ids=["syntax", "unclosed", "missing-names", "binary"],
)
def test_bad_problem_files(tmp_path, capsys, source, message):
    path = tmp_path / "problem.py"
    path.write_bytes(source if isinstance(source, bytes) else source.encode())
    line = _run_main(tune, ["--problem", str(path)], capsys)
    assert message in line, line


_MODEL = (
    "import torch\nclass Model(torch.nn.Module):\n    def forward(self, x):\n        return x * 2\n"
)


@pytest.mark.parametrize(
    "source, message",
    [
        (_MODEL + "def get_inputs():\n    return None\ndef get_init_inputs():\n    return []\n",
         "get_inputs() returned a NoneType; it must return a list"),
        (_MODEL + "def get_inputs():\n    return torch.randn(4)\nget_init_inputs = []\n",
         "get_init_inputs is a list, not a function"),
        (_MODEL + "def get_inputs():\n    return torch.randn(4)\n"
         "def get_init_inputs():\n    return []\n",
         "get_inputs() returned a Tensor; it must return a list"),
        (_MODEL.replace("(torch.nn.Module):\n", "(torch.nn.Module):\n    def __init__(self, a):"
                        "\n        super().__init__()\n")
         + "def get_inputs():\n    return [torch.randn(4)]\n"
         "def get_init_inputs():\n    return []\n",
         "Model(*get_init_inputs()) with 0 argument(s): missing a required argument: 'a'"),
    ],
    ids=["inputs-none", "init-not-a-function", "bare-tensor", "init-arity"],
)  # fmt: skip
def test_problem_files_whose_functions_misbehave(tmp_path, capsys, source, message):
    """Found when the problem is run (not at parse): still one line and status 2, where a
    traceback came from the call site in problem.py (no frame in the user's file)."""
    path = tmp_path / "problem.py"
    path.write_text(source)
    argv = ["--problem", str(path), "--target", "llvm", "--trials", "1", "--no-progress",
            "--work-dir", str(tmp_path / "w")]  # fmt: skip
    code = tune.main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert message in err.strip().splitlines()[-1], err


def test_bad_bench_arguments(tmp_path, capsys, cpu_lib):
    text = tmp_path / "notes.so"
    text.write_text("hello")
    lonely = tmp_path / "lonely.so"
    shutil.copy(cpu_lib, lonely)
    cases = [
        ([str(tmp_path / "missing.so")], "missing.so: no such file"),
        ([str(tmp_path)], f"{tmp_path}: is a directory"),
        ([str(text)], "not a shared library (no ELF header)"),
        ([cpu_lib + ".json"], "this is the manifest; pass the library"),
        ([str(lonely)], "no manifest " + str(lonely) + ".json beside it"),
        ([cpu_lib, "--rep-ms", "0"], "--rep-ms: must be a finite number > 0"),
        ([cpu_lib, "--warmup-ms", "nan"], "--warmup-ms: must be a finite number > 0"),
        ([cpu_lib, "--cpu-threads", "0"], "--cpu-threads: must be >= 1"),
        ([cpu_lib, "--results-dir", "/proc/x"], "--results-dir: /proc/x: cannot write"),
        ([cpu_lib, "--device-name", "../etc"], "--device-name: '../etc'"),
        ([], "the following arguments are required: library"),
    ]
    for argv, message in cases:
        line = _run_main(bench, argv, capsys)
        assert message in line, (argv, line)


def test_static_tables_agree_with_the_package():
    from autokernel_tvm import config, hardware, targets
    from autokernel_tvm.workloads import OPS
    from autokernel_tvm.workloads.dtypes import DTYPES, FP8_DTYPES

    assert cli.OP_DIMS == {name: op.dims for name, op in OPS.items()}
    assert cli.TARGETS == config.TARGETS and cli.SPACES == config.SPACES
    assert cli.DTYPES == DTYPES and cli.ROCM_ARCHES == targets.ROCM_ARCHES
    assert cli.FP8_DTYPES == FP8_DTYPES
    cuda = {int(a[3:].rstrip("a")) for a in hardware.TABLE if a.startswith("sm_")}
    assert cli.CUDA_SMS == tuple(sorted(cuda))
    assert cli.env_vars() == config.ENV_VARS


# ---------------------------------------------------------------------------------------------
# Manifests: random edits of a real one are refused; formatting changes are not edits.


def _leaves(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))
    else:
        yield path, value


def _mutate(manifest: dict, rng: random.Random) -> dict:
    data = json.loads(json.dumps(manifest))
    path, value = rng.choice(list(_leaves(data)))
    holder = data
    for key in path[:-1]:
        holder = holder[key]
    kind = rng.randrange(4)
    if kind == 0 and isinstance(holder, dict):
        del holder[path[-1]]
    elif kind == 1:
        holder[path[-1]] = {"injected": True}
    elif isinstance(value, bool):
        holder[path[-1]] = not value
    elif isinstance(value, (int, float)):
        holder[path[-1]] = value + rng.choice([1, -1, 0.5])
    elif isinstance(value, str):
        holder[path[-1]] = value[:-1] if value and rng.random() < 0.5 else value + "x"
    else:
        holder[path[-1]] = 0
    return data


def test_random_manifest_edits_are_refused(tmp_path, cpu_lib):
    import autokernel_tvm.torch as ak_torch
    from autokernel_tvm.manifest import canonical

    original = json.load(open(cpu_lib + ".json"))
    rng = random.Random(16)
    refused = 0
    for i in range(40):
        edited = _mutate(original, rng)
        if canonical(edited) == canonical(original):
            continue
        path = str(tmp_path / f"m{i}.so")
        shutil.copy(cpu_lib, path)
        with open(path + ".json", "w") as f:
            json.dump(edited, f)
        with pytest.raises(ak_torch.LibraryError) as info:
            ak_torch.load(path)
        assert "\n" not in str(info.value) and str(info.value).startswith(path)
        refused += 1
    assert refused >= 30
    # Same content, other formatting and key order: not an edit.
    path = str(tmp_path / "reformatted.so")
    shutil.copy(cpu_lib, path)
    with open(path + ".json", "w") as f:
        json.dump(dict(reversed(list(original.items()))), f, indent=4)
    assert ak_torch.load(path).names


def test_truncated_and_garbage_manifests(tmp_path, cpu_lib):
    import autokernel_tvm.torch as ak_torch

    text = open(cpu_lib + ".json").read()
    for i, content in enumerate(
        [text[: len(text) // 2], "", "null", "[]", "\x00\x01", '{"format": 1}', text + "}"]
    ):
        path = str(tmp_path / f"g{i}.so")
        shutil.copy(cpu_lib, path)
        with open(path + ".json", "w") as f:
            f.write(content)
        with pytest.raises(ak_torch.LibraryError):
            ak_torch.load(path)


# ---------------------------------------------------------------------------------------------
# A few real subprocess runs.


def _env():
    return {**os.environ, "PYTHONPATH": ROOT}


@pytest.mark.parametrize(
    "argv",
    [
        ["scripts/tune.py", "--shape", "abc"],
        ["scripts/tune.py", "--shape", "-5,3,3"],
        ["scripts/tune.py", "--export", "/proc/x.so"],
        ["scripts/bench.py", "/nonexistent/lib.so"],
    ],
)
def test_subprocess_errors_are_one_line(argv):
    proc = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_help_imports_neither_tvm_nor_torch():
    code = (
        "import runpy, sys\n"
        "for script in ('scripts/tune.py', 'scripts/bench.py'):\n"
        "    sys.argv = [script, '--help']\n"
        "    try:\n"
        "        runpy.run_path(script, run_name='__main__')\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code in (0, None), exit.code\n"
        "heavy = sorted(m for m in ('tvm', 'torch', 'numpy') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--shape" in proc.stdout and "--rep-ms" in proc.stdout
