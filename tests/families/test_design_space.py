# SPDX-License-Identifier: Apache-2.0
"""The design-space rule's log line when a family's template does not apply to a block."""

from __future__ import annotations

from autokernel_tvm.families.design_space import _reason


def test_a_schedule_error_is_logged_by_its_message_not_its_carets():
    """TVM's ScheduleError ends with the IR and a row of carets under the culprit: its last
    200 characters, logged before, were mostly carets. The line is its "Error message:"."""
    err = RuntimeError(
        "ScheduleError: An error occurred in the schedule primitive 'split'.\nThe IR with "
        "diagnostic is:\n  for i in range(0):\n      ^^^^^^^^^^^^^^^^^\nError message: The "
        "loop has extent 0, which cannot be split\n"
    )
    assert _reason(err) == "The loop has extent 0, which cannot be split"
    assert _reason(RuntimeError("one line\nand more")) == "one line"
    assert _reason(RuntimeError("")) == "RuntimeError"
