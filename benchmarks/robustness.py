# SPDX-License-Identifier: Apache-2.0
"""Try bad inputs on the real scripts and torch ops and write the table of what happened.

    python benchmarks/robustness.py [--out benchmarks/results/robustness.md] [--quick]

Every case runs for real: ``scripts/tune.py`` and ``scripts/bench.py`` in a subprocess each
(bad arguments, bad files, problem files that do not parse, raise or use unsupported ops, edited
manifests, a library whose kernel is wrong), and the torch ops of an exported library called
with bad arguments (in one subprocess). A case is

* a **clear error** when it exits with the expected status (2 for bad input, 1 for a wrong
  kernel) and its last stderr line is ``error: <argument or file>: ...`` (torch ops: the
  expected exception type, its message naming the op and the argument);
* a **traceback** when stderr holds a Python traceback, a **crash** when the process died of a
  signal, **silently accepted** when it exited 0 (or the op returned), else **unclear**.

``--quick`` skips the cases that import TVM (problem files, libraries). Writes a Markdown table
with one row per category and the list of cases with their first error line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUNE = os.path.join(ROOT, "scripts", "tune.py")
BENCH = os.path.join(ROOT, "scripts", "bench.py")
OUTCOMES = ("clear", "traceback", "crash", "accepted", "unclear")


@dataclasses.dataclass
class Case:
    category: str
    label: str
    argv: list
    expect: int = 2
    outcome: str = ""
    line: str = ""
    seconds: float = 0.0


def run_case(case: Case, env: dict) -> Case:
    start = time.time()
    proc = subprocess.run(
        [sys.executable, *case.argv], env=env, capture_output=True, text=True, timeout=900
    )
    case.seconds = time.time() - start
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    case.line = lines[-1] if lines else ""
    if proc.returncode < 0 or proc.returncode >= 128:
        case.outcome = "crash"
    elif "Traceback (most recent call last)" in proc.stderr:
        case.outcome = "traceback"
    elif proc.returncode == 0:
        case.outcome = "accepted"
    elif proc.returncode == case.expect and case.line.startswith("error: "):
        case.outcome = "clear"
    else:
        case.outcome = "unclear"
        case.line = f"exit {proc.returncode}: {case.line}"
    return case


def tune_cases(tmp: str) -> list[Case]:
    file = os.path.join(tmp, "a_file")
    with open(file, "w") as f:
        f.write("x")
    args = [
        ("--shape abc", ["--shape", "abc"]),
        ("--shape -5,3,3", ["--shape", "-5,3,3"]),
        ("--shape=-5,3,3", ["--shape=-5,3,3"]),
        ("--shape 0,3,3", ["--shape", "0,3,3"]),
        ("--shape 1.5,2,2", ["--shape", "1.5,2,2"]),
        ("--shape 4,4 (gemm takes 3)", ["--shape", "4,4"]),
        ("--shape 4,4,4,4 (gemm takes 3)", ["--shape", "4,4,4,4"]),
        ("--shape 99999999999,2,2", ["--shape", "99999999999,2,2"]),
        ("--shape ,,", ["--shape", ",,"]),
        ("--shape '' ", ["--shape", ""]),
        ("--shape=--", ["--shape=--"]),
        ("conv2d with 3 dims", ["--op", "conv2d_nhwc", "--shape", "1,2,3"]),
        ("batch_gemm with 3 dims", ["--op", "batch_gemm", "--shape", "8,8,8"]),
        ("--op matmul", ["--op", "matmul"]),
        ("--work-dir naming a file", ["--work-dir", file]),
        ("--work-dir under a file", ["--work-dir", os.path.join(file, "sub")]),
        ("--work-dir /proc/x", ["--work-dir", "/proc/x"]),
        ("--export /proc/x.so", ["--export", "/proc/x.so"]),
        ("--export a directory", ["--export", tmp]),
        ("--export under a file", ["--export", os.path.join(file, "x.so")]),
        ("--report /proc/r.json", ["--report", "/proc/r.json"]),
        ("--arch foo on llvm", ["--arch", "foo"]),
        ("--arch sm_90a on llvm", ["--arch", "sm_90a"]),
        ("--target cuda --arch foo", ["--target", "cuda", "--arch", "foo"]),
        ("--target cuda --arch sm_91", ["--target", "cuda", "--arch", "sm_91"]),
        ("--target cuda --arch sm_80a", ["--target", "cuda", "--arch", "sm_80a"]),
        ("--target rocm --arch sm_90a", ["--target", "rocm", "--arch", "sm_90a"]),
        ("--target tpu", ["--target", "tpu"]),
        ("--dtype int8", ["--dtype", "int8"]),
        ("--out-dtype float64", ["--out-dtype", "float64"]),
        ("--space magic", ["--space", "magic"]),
        ("--trials 0", ["--trials", "0"]),
        ("--trials -3", ["--trials", "-3"]),
        ("--trials ten", ["--trials", "ten"]),
        ("--trials-per-iter 0", ["--trials-per-iter", "0"]),
        ("--build-workers=-1", ["--build-workers=-1"]),
        ("--build-only x", ["--build-only", "x"]),
        ("--seed 1.5", ["--seed", "1.5"]),
        ("--shape (no value)", ["--shape"]),
        ("unknown flag", ["--frobnicate"]),
        ("stray positional", ["positional"]),
        ("--problem missing file", ["--problem", os.path.join(tmp, "none.py")]),
        ("--problem a directory", ["--problem", tmp]),
    ]
    return [Case("tune.py arguments", label, [TUNE, *argv]) for label, argv in args]


PROBLEMS = {
    "syntax error": "import torch\nclass Model(torch.nn.Module:\n    pass\n",
    "missing get_inputs": "import torch\nclass Model(torch.nn.Module):\n    pass\n",
    "binary file": None,
    "NameError at import": (
        "import torch\nx = undefined_name\nclass Model(torch.nn.Module):\n    pass\n"
        "def get_inputs(): return []\ndef get_init_inputs(): return []\n"
    ),
    "forward raises": (
        "import torch\nclass Model(torch.nn.Module):\n    def forward(self, x):\n"
        "        raise RuntimeError('boom')\n"
        "def get_inputs(): return [torch.randn(4, 4)]\ndef get_init_inputs(): return []\n"
    ),
    "unsupported op (fft)": (
        "import torch\nclass Model(torch.nn.Module):\n    def forward(self, x):\n"
        "        return torch.fft.fft(x).real\n"
        "def get_inputs(): return [torch.randn(4, 4)]\ndef get_init_inputs(): return []\n"
    ),
    "__init__ raises": (
        "import torch\nclass Model(torch.nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        raise ValueError('bad init')\n"
        "def get_inputs(): return [torch.randn(4, 4)]\ndef get_init_inputs(): return []\n"
    ),
}
NEEDS_TVM = {"NameError at import", "forward raises", "unsupported op (fft)", "__init__ raises"}


def problem_cases(tmp: str, quick: bool) -> list[Case]:
    cases = []
    for i, (label, source) in enumerate(PROBLEMS.items()):
        if quick and label in NEEDS_TVM:
            continue
        path = os.path.join(tmp, f"problem{i}.py")
        with open(path, "wb") as f:
            f.write(b"\xff\xfe\x00\x01" if source is None else source.encode())
        work = os.path.join(tmp, f"pw{i}")
        argv = [TUNE, "--problem", path, "--trials", "2", "--work-dir", work, "--no-progress"]
        cases.append(Case("tune.py --problem files", label, argv))
    return cases


def make_libraries(tmp: str) -> dict:
    """A verified CPU library, and one whose kernel computes A@B while its manifest says A@B.T.

    The second is made by hand (its verify report is a stand-in): it is what a manifest
    checker cannot catch, so ``bench.py`` must catch it by comparing with torch.
    """
    import tvm

    from autokernel_tvm import verify
    from autokernel_tvm.builder import build_module
    from autokernel_tvm.export import export
    from autokernel_tvm.targets import make_target
    from autokernel_tvm.tuner import TuneResult
    from autokernel_tvm.workloads import Workload

    def result(workload, computed, report=None):
        mod = tvm.s_tir.Schedule(computed.ir_module()).mod
        if report is None:
            exe = build_module(mod, make_target("llvm"))
            report = verify.verify(exe["main"], workload, seed=0).to_json()
        return TuneResult(workload=workload, target="llvm", arch=None, latency_s=1e-4,
                          trials=0, failures={}, tune_seconds=0.0, trace="", mod=mod, curve=[],
                          verify=report, space="untuned")  # fmt: skip

    good = os.path.join(tmp, "good.so")
    export(result(Workload("gemm_nt", (32, 24, 16)), Workload("gemm_nt", (32, 24, 16))), good)
    nt = Workload("gemm_nt", (16, 16, 16))
    stand_in = {"workload": nt.name, "passed": True, "checks": ["stand-in"], "failures": []}
    wrong = os.path.join(tmp, "wrong.so")
    export(result(nt, Workload("gemm", (16, 16, 16)), stand_in), wrong)
    return {"good": good, "wrong": wrong}


def bench_cases(tmp: str, quick: bool) -> list[Case]:
    text = os.path.join(tmp, "notes.so")
    with open(text, "w") as f:
        f.write("hello\n")
    cases = [
        ("missing file", [os.path.join(tmp, "missing.so")]),
        ("a directory", [tmp]),
        ("a text file", [text]),
        ("no library argument", []),
    ]
    out = [Case("bench.py files", label, [BENCH, *argv]) for label, argv in cases]
    if quick:
        return out
    libs = make_libraries(tmp)
    good = libs["good"]
    lonely = os.path.join(tmp, "lonely.so")
    shutil.copy(good, lonely)
    more = [
        ("the .json passed as the library", [good + ".json"]),
        ("library without its manifest", [lonely]),
        ("--kernel not in the library", [good, "--kernel", "nope", "--no-append"]),
        ("--rep-ms 0", [good, "--rep-ms", "0"]),
        ("--cpu-threads 0", [good, "--cpu-threads", "0"]),
        ("--results-dir /proc/x", [good, "--results-dir", "/proc/x"]),
    ]
    out += [Case("bench.py files", label, [BENCH, *argv]) for label, argv in more]
    out.append(
        Case(
            "bench.py files",
            "kernel whose output is wrong",
            [BENCH, libs["wrong"], "--no-append", "--rep-ms", "20", "--warmup-ms", "5"],
            expect=1,
        )  # fmt: skip
    )
    return out + manifest_cases(tmp, good, libs["wrong"])


def manifest_cases(tmp: str, good: str, other: str) -> list[Case]:
    with open(good + ".json") as f:
        original = json.load(f)
    edits = {
        'kernels[0].op "gemm_nt" -> "gemm"': lambda m: m["kernels"][0].update(op="gemm"),
        "kernels[0].shape changed": lambda m: m["kernels"][0].update(shape=[32, 24, 8]),
        "kernels[0].inputs[0].dtype -> float16": lambda m: m["kernels"][0]["inputs"][0].update(
            dtype="float16"
        ),
        "kernels[0].output.shape changed": lambda m: m["kernels"][0]["output"].update(
            shape=[24, 32]
        ),
        "kernels[0].name changed": lambda m: m["kernels"][0].update(name="other"),
        "target.kind llvm -> cuda": lambda m: m["target"].update(kind="cuda"),
        "verify.passed removed": lambda m: m["kernels"][0]["verify"].pop("passed"),
        "field added": lambda m: m.update(note="x"),
        "sha256 edited": lambda m: m.update(sha256="0" * 64),
        "format_version 1": lambda m: m.update(format_version=1),
        "format changed": lambda m: m.update(format="other"),
    }
    cases = []
    for i, (label, edit) in enumerate(edits.items()):
        path = os.path.join(tmp, f"edited{i}.so")
        shutil.copy(good, path)
        data = json.loads(json.dumps(original))
        edit(data)
        with open(path + ".json", "w") as f:
            json.dump(data, f, indent=1)
        cases.append(Case("manifests (bench.py)", label, [BENCH, path, "--no-append"]))
    raw = {
        "manifest cut in half": lambda text: text[: len(text) // 2],
        "manifest empty": lambda text: "",
        "manifest not an object": lambda text: "[]",
    }
    with open(good + ".json") as f:
        text = f.read()
    for i, (label, cut) in enumerate(raw.items()):
        path = os.path.join(tmp, f"cut{i}.so")
        shutil.copy(good, path)
        with open(path + ".json", "w") as f:
            f.write(cut(text))
        cases.append(Case("manifests (bench.py)", label, [BENCH, path, "--no-append"]))
    flipped = os.path.join(tmp, "flipped.so")
    shutil.copy(good, flipped)
    shutil.copy(good + ".json", flipped + ".json")
    with open(flipped, "r+b") as f:
        f.seek(4096)
        byte = f.read(1)
        f.seek(4096)
        f.write(bytes([byte[0] ^ 0xFF]))
    swapped = os.path.join(tmp, "swapped.so")
    shutil.copy(other, swapped)
    shutil.copy(good + ".json", swapped + ".json")
    cases += [
        Case("manifests (bench.py)", "a byte of the library flipped", [BENCH, flipped]),
        Case("manifests (bench.py)", "library and manifest of two exports", [BENCH, swapped]),
    ]
    return cases


TORCH_CASES = r"""
import json, sys, torch
import autokernel_tvm.torch as ak
lib = ak.load(sys.argv[1])
op = lib[lib.names[0]]
a, b = torch.randn(32, 16), torch.randn(24, 16)
cases = {
    "one tensor missing": (lambda: op(a), TypeError, "takes 2 tensors"),
    "one tensor too many": (lambda: op(a, b, b), TypeError, "takes 2 tensors"),
    "unknown keyword": (lambda: op(a, C=b), TypeError, "no argument(s) ['C']"),
    "a list instead of a tensor": (lambda: op(a, [1.0]), TypeError, "argument 'B'"),
    "wrong shape": (lambda: op(a, b[:20]), ValueError, "argument 'B' has shape"),
    "wrong dtype": (lambda: op(a.double(), b), TypeError, "argument 'A' has dtype"),
    "non-contiguous": (lambda: op(a.T.contiguous().T, b), ValueError, "not contiguous"),
    "meta and cpu mixed": (lambda: op(a, b.to("meta")), ValueError, "is on meta but"),
    "wrong shape on meta": (lambda: op(a.to("meta"), b[:20].to("meta")), ValueError, "shape"),
}
out = {}
for label, (call, kind, text) in cases.items():
    try:
        call()
        out[label] = ["accepted", ""]
    except Exception as err:
        msg = str(err).splitlines()[0] if str(err) else ""
        clear = isinstance(err, kind) and text in str(err) and lib.names[0] in str(err)
        out[label] = ["clear" if clear else "unclear", f"{type(err).__name__}: {msg}"]
print(json.dumps(out))
"""


def torch_cases(tmp: str, env: dict) -> list[Case]:
    good = os.path.join(tmp, "good.so")
    proc = subprocess.run([sys.executable, "-c", TORCH_CASES, good], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    if proc.returncode != 0:
        crashed = proc.returncode < 0
        return [Case("torch ops", "all", [], outcome="crash" if crashed else "traceback",
                     line=proc.stderr.strip().splitlines()[-1])]  # fmt: skip
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    return [
        Case("torch ops", label, [], outcome=outcome, line=line)
        for label, (outcome, line) in found.items()
    ]


def write_table(cases: list[Case], path: str, seconds: float) -> str:
    categories = list(dict.fromkeys(c.category for c in cases))
    lines = [
        "# Robustness: bad inputs tried",
        "",
        f"Written by `python benchmarks/robustness.py` ({time.strftime('%Y-%m-%d')}, "
        f"{seconds:.0f} s): every case ran for real, the scripts in a subprocess each. "
        "Clear error = the expected exit status (2 bad input, 1 wrong kernel) and a last stderr "
        "line `error: <argument or file>: ...` (torch ops: `TypeError`/`ValueError` naming the "
        "op and the argument). The same cases, and 400 generated shapes and 40 random manifest "
        "edits more, are tests in `tests/scripts/test_cli_fuzz.py`, `tests/test_manifest.py` "
        "and `tests/torch/test_loader.py`.",
        "",
        "| category | bad inputs | clear errors | tracebacks | crashes | silently accepted "
        "| unclear |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for cat in [*categories, None]:
        group = [c for c in cases if cat is None or c.category == cat]
        counts = [sum(c.outcome == o for c in group) for o in OUTCOMES]
        name = "**all**" if cat is None else cat
        lines.append(f"| {name} | {len(group)} | " + " | ".join(map(str, counts)) + " |")
    lines += ["", "## Cases", "", "| category | input | outcome | message |", "|---|---|---|---|"]
    for c in cases:
        message = c.line.replace("|", "\\|")
        if len(message) > 160:
            message = message[:157] + "..."
        lines.append(f"| {c.category} | {c.label} | {c.outcome} | `{message}` |")
    lines += [
        "",
        "## Faults",
        "",
        "Filled by the results of `tests/test_faults.py` (faults injected, runs completed, "
        "records lost).",
        "",
    ]
    text = "\n".join(lines)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "robustness.md"))
    p.add_argument("--quick", action="store_true", help="skip the cases that import TVM")
    args = p.parse_args(argv)
    start = time.time()
    sys.path.insert(0, ROOT)
    with tempfile.TemporaryDirectory(prefix="ak_robustness_") as tmp:
        env = {**os.environ, "PYTHONPATH": ROOT, "AUTOKERNEL_LIBRARY": os.path.join(tmp, "lib")}
        cases = tune_cases(tmp) + problem_cases(tmp, args.quick) + bench_cases(tmp, args.quick)
        for case in cases:
            run_case(case, env)
            print(f"{case.outcome:9s} {case.seconds:5.1f}s {case.category}: {case.label}",
                  flush=True)  # fmt: skip
        if not args.quick:
            cases += torch_cases(tmp, env)
        for case in cases:
            case.line = case.line.replace(tmp, "<tmp>")
    text = write_table(cases, args.out, time.time() - start)
    table = [line for line in text.splitlines() if line.startswith("| ")]
    print("\n".join(table[: 3 + len({c.category for c in cases})]))
    bad = [c for c in cases if c.outcome != "clear"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
