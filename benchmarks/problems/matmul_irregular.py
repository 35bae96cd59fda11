# SPDX-License-Identifier: Apache-2.0
"""Irregular matmul: 8205 x 2949 @ 2949 x 5921 (no power-of-two dim).

KernelBench format; the dtype (fp16/bf16) is chosen by the runner.
"""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.matmul(A, B)


def get_inputs():
    return [torch.randn(8205, 2949), torch.randn(2949, 5921)]


def get_init_inputs():
    return []
