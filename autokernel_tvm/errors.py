# SPDX-License-Identifier: Apache-2.0
"""Errors shared by the tuner and the modules it uses (a leaf module: it imports nothing)."""


class TuneError(RuntimeError):
    """Tuning cannot start or produced no kernel that passes the correctness gate."""
