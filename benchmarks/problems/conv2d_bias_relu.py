# SPDX-License-Identifier: Apache-2.0
"""conv2d 3x3 (64 -> 128 channels, 56 x 56, batch 32, padding 1) + bias + ReLU, NCHW as PyTorch
models are written (KernelBench format; dtype is chosen by the runner)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, cin, cout, kernel):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)

    def forward(self, x):
        return torch.relu(self.conv(x))


def get_inputs():
    return [torch.randn(32, 64, 56, 56)]


def get_init_inputs():
    return [64, 128, 3]
