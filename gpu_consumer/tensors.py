"""A minibatch as torch tensors: what the receive thread hands the training loop.

The receive thread turns a decoded `MiniBatch` into a `TensorBatch` (pinned
host memory when CUDA is present) and the training loop moves it to the
device with non-blocking copies.  torch is imported lazily by the callers of
this module's functions, never at package import.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import numpy as np

from worker.batch import POSITION_FIELDS, MiniBatch
from worker.ticket import Ticket

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class TensorBatch:
    """Field meanings as in `worker.batch.MiniBatch`; arrays become tensors.

    node_sets[k]: int64 dense ids; nbr_index[k]: int64 positions into
    node_sets[k]; nbr_weight[k]: float32; ctx_index[k]: int64 or None;
    features keep their storage dtype (float16 travels half the bytes) and
    are cast on the device.
    """

    ticket: Ticket
    num_dst: tuple[int, ...]
    node_sets: tuple["torch.Tensor", ...]
    nbr_index: tuple["torch.Tensor", ...]
    nbr_weight: tuple["torch.Tensor", ...]
    ctx_index: tuple["torch.Tensor | None", ...]
    features: "torch.Tensor"
    queries: "torch.Tensor"
    positives: "torch.Tensor"
    easy_negatives: "torch.Tensor"
    hard_negatives: "torch.Tensor"
    context_types: "torch.Tensor | None" = None
    context_ids: "torch.Tensor | None" = None
    context_features: tuple["torch.Tensor", ...] = ()
    negative_logq: "torch.Tensor | None" = None    # float32 [B, N + h], or None

    @property
    def size(self) -> int:
        return int(self.queries.shape[0])

    @classmethod
    def from_minibatch(cls, batch: MiniBatch, *, pin: bool = False) -> "TensorBatch":
        import torch

        def tensor(array):
            if array is None:
                return None
            t = torch.from_numpy(array)
            return t.pin_memory() if pin else t

        batch = widen(batch)   # the dtypes are decided there, once
        graph = batch.graph
        return cls(
            ticket=batch.ticket,
            num_dst=tuple(b.num_dst for b in graph.blocks),
            node_sets=tuple(tensor(n) for n in graph.node_sets),
            nbr_index=tuple(tensor(b.neighbor_index) for b in graph.blocks),
            nbr_weight=tuple(tensor(b.neighbor_weight) for b in graph.blocks),
            ctx_index=tuple(tensor(b.context_index) for b in graph.blocks),
            features=tensor(batch.features),
            **{name: tensor(getattr(batch, name)) for name in POSITION_FIELDS},
            context_types=tensor(graph.context_types),
            context_ids=tensor(graph.context_ids),
            context_features=tuple(tensor(f) for f in batch.context_features),
            negative_logq=tensor(_as(batch.negative_logq, np.float32)),
        )

    def to(self, device, non_blocking: bool = True) -> "TensorBatch":
        """Copy every tensor to `device` (asynchronously from pinned memory)."""
        def move(value):
            if value is None:
                return None
            if isinstance(value, tuple):
                return tuple(move(v) for v in value)
            if hasattr(value, "to"):
                return value.to(device, non_blocking=non_blocking)
            return value
        skip = {"ticket", "num_dst"}
        return replace(self, **{f.name: move(getattr(self, f.name))
                                for f in fields(self) if f.name not in skip})


def widen(batch: MiniBatch) -> MiniBatch:
    """The MiniBatch with every index array int64 and weights float32 (what the
    model takes), with numpy; arrays already so are kept, not copied."""
    graph = batch.graph
    blocks = tuple(replace(b, neighbor_index=_as(b.neighbor_index, np.int64),
                           neighbor_weight=_as(b.neighbor_weight, np.float32),
                           context_index=_as(b.context_index, np.int64)) for b in graph.blocks)
    graph = replace(graph, node_sets=tuple(_as(n, np.int64) for n in graph.node_sets),
                    blocks=blocks, context_types=_as(graph.context_types, np.int64),
                    context_ids=_as(graph.context_ids, np.int64))
    return replace(batch, graph=graph,
                   **{name: _as(getattr(batch, name), np.int64) for name in POSITION_FIELDS})


def _as(array, dtype):
    if array is None or array.dtype == dtype:
        return array
    return array.astype(dtype)
