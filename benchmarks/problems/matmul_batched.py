# SPDX-License-Identifier: Apache-2.0
"""Batched matmul: 16 x (1024 x 1024 @ 1024 x 1024).

KernelBench format; the dtype (fp16/bf16) is chosen by the runner.
"""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.bmm(A, B)


def get_inputs():
    return [torch.randn(16, 1024, 1024), torch.randn(16, 1024, 1024)]


def get_init_inputs():
    return []
