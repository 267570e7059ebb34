"""A tiny multi-task model shared by the step / flat / gradient tests.

Conv1d + ELU + BatchNorm trunk (so BatchNorm handling is exercised), a classifier head ``cls``,
a decoder head ``rec`` and, optionally, a parameter-free task ``reg`` that reads the
representation directly (like MixNet's metric-learning task).
"""

from __future__ import annotations

from torch import nn


class TinyNet(nn.Module):
    def __init__(self, c: int = 3, n: int = 16, d: int = 4, *, with_reg: bool = True) -> None:
        super().__init__()
        self.task_names = ("cls", "rec", "reg") if with_reg else ("cls", "rec")
        self.trunk = nn.Sequential(
            nn.Conv1d(c, 4, 5, padding=2), nn.ELU(), nn.BatchNorm1d(4), nn.AvgPool1d(2),
            nn.Flatten(), nn.Linear(4 * n // 2, d),
        )
        self.cls = nn.Linear(d, 2)
        self.rec = nn.Linear(d, c * n)
        self.shape = (c, n)
        self.constrained = 0

    def encode(self, x):
        return self.trunk(x)

    def decode(self, z):
        out = {"cls": self.cls(z), "rec": self.rec(z).view(-1, *self.shape)}
        if "reg" in self.task_names:
            out["reg"] = z
        return out

    def forward(self, x):
        return self.decode(self.encode(x))

    def shared_parameters(self):
        return self.trunk.parameters()

    def task_parameters(self, task):
        return {"cls": self.cls, "rec": self.rec}.get(task, nn.Identity()).parameters()

    def apply_constraints(self):
        self.constrained += 1
