# SPDX-License-Identifier: Apache-2.0
"""The LLaMA-style gated MLP of ``llama_mlp`` on 3-D activations, as a transformer calls it: 4
sequences of 512 tokens, hidden 4096, intermediate 11008, no biases (KernelBench format; dtype
is chosen by the runner). The same GEMMs as ``llama_mlp``'s 2048 tokens: dispatch must see
through the importer's reshapes to fuse the gated pair."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, hidden, intermediate):
        super().__init__()
        self.gate = nn.Linear(hidden, intermediate, bias=False)
        self.up = nn.Linear(hidden, intermediate, bias=False)
        self.down = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


def get_inputs():
    return [torch.randn(4, 512, 4096)]


def get_init_inputs():
    return [4096, 11008]
