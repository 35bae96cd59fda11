# SPDX-License-Identifier: Apache-2.0
"""The workloads' error type (a leaf module: ops, values and epilogues all raise it)."""


class WorkloadError(ValueError):
    """An op, shape or dtype that no workload accepts; the message says which and why."""
