# SPDX-License-Identifier: Apache-2.0
"""A transformer's causal self-attention block: 4 sequences of 512 tokens, hidden 4096, 32 heads
of 128 (LLaMA-7B's), one qkv projection, ``F.scaled_dot_product_attention``, the output
projection and the residual; no biases (KernelBench format; dtype is chosen by the runner).
Eager runs a fused flash kernel; the import runs attention as two batched GEMMs around a
softmax (the scores in the input dtype with an fp32 result)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden, bias=False)
        self.o = nn.Linear(hidden, hidden, bias=False)

    def forward(self, x):
        b, s, h = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        heads = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return x + self.o(heads.transpose(1, 2).reshape(b, s, h))


def get_inputs():
    return [torch.randn(4, 512, 4096)]


def get_init_inputs():
    return [4096, 32]
