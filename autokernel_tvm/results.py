# SPDX-License-Identifier: Apache-2.0
"""The benchmark result schema: one JSON object per line in ``benchmarks/results/<device>.jsonl``.

Every benchmark appends rows through :func:`append_result`, which refuses a row that lacks a
required key or carries a value of the wrong kind, so that the committed files stay comparable
across scripts. A row compares one implementation against one named baseline measured in the
same process (``ratio = tflops / baseline_tflops``).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re

#: key -> what it must hold. "number?" and "int?" also accept None (e.g. no tuning for a row).
REQUIRED_KEYS = {
    "date": "str",  # ISO 8601, UTC
    "device": "str",  # short device name: h100, h200, mi300x, cpu
    "gpu_name": "str",  # full device name (torch.cuda.get_device_name() or the CPU model)
    "op": "str",
    "shape": "shape",  # list of ints, the workload's shape
    "dtype": "str",
    "impl": "str",  # what was measured: a family (cuda.wgmma...), stock, eager, ...
    "tflops": "number",
    "baseline": "str",  # what it was compared with: torch, cublas, torch.compile, ...
    "baseline_tflops": "number",
    "ratio": "number",  # tflops / baseline_tflops
    "trials": "int?",
    "tune_seconds": "number?",
    "command": "str",  # the exact command line that produced the row
}
#: Known GPU families, matched in the full device name (first match wins).
GPU_FAMILIES = (
    "GB200", "B200", "B100", "H200", "H100", "H800", "H20", "A100", "A800", "A10G", "A10",
    "L40S", "L40", "L4", "V100", "T4", "MI355X", "MI325X", "MI300X", "MI300A", "MI250X", "MI210",
)  # fmt: skip


class ResultSchemaError(ValueError):
    """A result row lacks a required key or has a value of the wrong kind."""


def validate_row(row: dict) -> dict:
    """Check ``row`` against :data:`REQUIRED_KEYS`; return it unchanged.

    Raises
    ------
    ResultSchemaError
        Missing keys (all named), wrong value kinds, or values JSON cannot hold (NaN, inf).
    """
    missing = [key for key in REQUIRED_KEYS if key not in row]
    if missing:
        raise ResultSchemaError(f"result row lacks required keys {missing}")
    for key, kind in REQUIRED_KEYS.items():
        value = row[key]
        if not _is_kind(value, kind):
            raise ResultSchemaError(f"result row key {key!r} must be {kind}, got {value!r}")
    try:
        json.dumps(row, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ResultSchemaError(f"result row is not plain JSON: {err}") from err
    return row


def append_result(path: str | os.PathLike, row: dict) -> dict:
    """Validate ``row`` and append it as one JSON line to ``path`` (folders are created)."""
    validate_row(row)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    line = json.dumps(row, allow_nan=False)
    with open(path, "a") as f:
        f.write(line + "\n")
    return row


def read_results(path: str | os.PathLike) -> list[dict]:
    """All rows of a results file, in the order they were appended."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def now_iso() -> str:
    """The current time as ISO 8601 in UTC (the ``date`` of a row)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def device_short_name(full_name: str) -> str:
    """``"NVIDIA H100 80GB HBM3"`` -> ``"h100"``; unknown names are slugified."""
    upper = full_name.upper()
    for family in GPU_FAMILIES:
        if re.search(rf"(?<![A-Z0-9]){family}(?![0-9])", upper):
            return family.lower()
    slug = re.sub(r"[^a-z0-9]+", "-", full_name.lower()).strip("-")
    return slug or "unknown"


def _is_kind(value, kind: str) -> bool:
    if value is None:
        return kind.endswith("?")
    kind = kind.rstrip("?")
    if kind == "str":
        return isinstance(value, str) and bool(value)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if kind == "number":
        return (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        )
    if kind == "shape":
        return isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
    raise AssertionError(kind)
