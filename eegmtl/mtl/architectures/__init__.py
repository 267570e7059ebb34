"""Multi-task architectures beyond hard sharing: MMoE, CGC (one-level PLE), PLE, Cross-stitch.

Each wrapper builds its shared part from a user-given factory (any torch module: a LeNet trunk,
a ResNet, an EEG network) and follows the :class:`~eegmtl.mtl.tasks.MultiTaskModel` protocol
like the hard-sharing and MTAN models, so the step and the trainer accept it unchanged:

- ``encode(x)`` returns the per-task features stacked as ``(B, T, *feature_shape)``
  (``rep[:, t]`` feeds head ``t``, as for MTAN);
- ``decode(rep)`` applies head ``t`` to ``rep[:, t]``;
- ``shared_parameters()`` are all parameters except the heads (experts, gates, cross-stitch
  units), ``task_parameters(t)`` the parameters of head ``t``.

What is "shared": the gates of MMoE/CGC/PLE, the task-specific experts of CGC/PLE and the
columns of a cross-stitch network are used by one task's features only (PLE's lower-level
task experts also feed the shared gate), yet they sit inside ``encode``; as
for MTAN's attention modules (and LibMTL, whose encoder holds experts and gates), they are
counted as shared, so gradient aggregators see them with zero gradient from the other tasks.
Representation-level ("-UB") gradients of these models have a block structure (one block per
task).

One module per family: :mod:`~eegmtl.mtl.architectures.base` (the protocol and the gates),
:mod:`~eegmtl.mtl.architectures.gated` (MMoE, CGC), :mod:`~eegmtl.mtl.architectures.ple` (PLE),
:mod:`~eegmtl.mtl.architectures.cross_stitch` (cross-stitch).
"""

from __future__ import annotations

from .base import ExpertFactory as ExpertFactory
from .base import MultiTaskArchitecture
from .cross_stitch import CrossStitch, CrossStitchUnit
from .gated import CGC, MMoE
from .ple import PLE

__all__ = ["CGC", "PLE", "MMoE", "CrossStitch", "CrossStitchUnit", "MultiTaskArchitecture"]
