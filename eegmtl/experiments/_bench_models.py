"""The two models and synthetic batches of the MTL step-time benchmark (perf-anchors §1).

(a) LeNet MultiMNIST (ParetoMTL), batch 256, T = 2; (b) the EEG-sized T = 3 net (Conv1d /
BatchNorm trunk, classifier, transposed-conv decoder, latent-norm task). Random data: the
benchmark times steps, it does not train.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from eegmtl.models.vision import LeNetEncoder
from eegmtl.mtl import Task

__all__ = ["EEGNet3", "LeNetMTL", "eeg_setup", "lenet_setup"]


class LeNetMTL(nn.Module):
    """ParetoMTL LeNet (perf-anchors §1a): 30,890 shared parameters, two Linear(50, 10) heads.

    The trunk is the vision benchmark's :class:`~eegmtl.models.vision.LeNetEncoder` (with its
    CPU weight-gradient convolutions), so the benchmark times the model the grid trains.
    """

    task_names = ("left", "right")

    def __init__(self) -> None:
        super().__init__()
        self.encoder = LeNetEncoder()
        self.heads = nn.ModuleDict({n: nn.Linear(50, 10) for n in self.task_names})

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return {n: h(z) for n, h in self.heads.items()}

    def shared_parameters(self):
        return self.encoder.parameters()

    def task_parameters(self, task):
        return self.heads[task].parameters()


class EEGNet3(nn.Module):
    """EEG-sized 3-task net (perf-anchors §1b): 26,905 shared parameters."""

    task_names = ("cls", "rec", "lat")

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv1d(18, 18, 64, padding="same"), nn.ELU(), nn.BatchNorm1d(18), nn.AvgPool1d(4),
            nn.Conv1d(18, 9, 32, padding="same"), nn.ELU(), nn.BatchNorm1d(9), nn.AvgPool1d(4),
            nn.Flatten(), nn.Linear(225, 4),
        )
        self.cls = nn.Linear(4, 2)
        self.dec = nn.Sequential(nn.Linear(4, 225), nn.ELU())
        self.up = nn.ConvTranspose1d(9, 18, 16, stride=16)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        rec = self.up(self.dec(z).view(-1, 9, 25))
        return {"cls": self.cls(z), "rec": rec, "lat": z}

    def shared_parameters(self):
        return self.encoder.parameters()

    def task_parameters(self, task):
        if task == "cls":
            return list(self.cls.parameters())
        if task == "rec":
            return [*self.dec.parameters(), *self.up.parameters()]
        return []


def lenet_setup(seed: int):
    g = torch.Generator().manual_seed(seed)
    batches = [
        (torch.randn(256, 1, 36, 36, generator=g),
         {n: torch.randint(0, 10, (256,), generator=g) for n in LeNetMTL.task_names})
        for _ in range(4)
    ]
    tasks = [Task(n, F.cross_entropy) for n in LeNetMTL.task_names]
    return LeNetMTL, tasks, batches


def eeg_setup(seed: int, batch: int):
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(4):
        x = torch.randn(batch, 18, 400, generator=g)
        batches.append((x, {"cls": torch.randint(0, 2, (batch,), generator=g), "rec": x,
                            "lat": x}))
    tasks = [
        Task("cls", F.cross_entropy),
        Task("rec", F.mse_loss),
        Task("lat", lambda z, _: z.pow(2).sum(1).mean()),
    ]
    return EEGNet3, tasks, batches
