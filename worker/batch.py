"""The minibatch a producer builds and the trainer consumes.

`to_arrays`/`from_arrays` flatten it to named numpy arrays for the wire
(`worker/wire.py`), never pickle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sampler.records import Block, ComputationGraph
from worker.ticket import Ticket


# The batch's own position arrays (into graph.targets): int32 on the wire, int64
# in the model.  The one list of them: the wire form, the receive thread's
# widening and the TensorBatch all go through it.
POSITION_FIELDS = ("queries", "positives", "easy_negatives", "hard_negatives")


@dataclass(frozen=True)
class MiniBatch:
    """One training step's worth of data.

    graph:          the computation graph; its targets hold every query,
                    positive and negative of the batch, deduplicated.
    features:       float16/float32 [len(graph.input_nodes), d] input features
                    of graph.input_nodes, gathered from the store.
    queries, positives: int32 [B] positions in graph.targets.
    easy_negatives: int32 [N] positions in graph.targets, shared by the batch.
    hard_negatives: int32 [B, h] positions in graph.targets (h may be 0).
    context_features: per context type, features of that type's context nodes
                    in graph order (MultiSage), else empty.
    negative_logq:  float16 [B, N + h] what the sampled softmax subtracts from
                    each negative's logit for the hard negatives' proposal
                    (sampler.negatives.logq_correction); [B, 0] (or None):
                    nothing to subtract.
    """

    ticket: Ticket
    graph: ComputationGraph
    features: np.ndarray
    queries: np.ndarray
    positives: np.ndarray
    easy_negatives: np.ndarray
    hard_negatives: np.ndarray
    context_features: tuple[np.ndarray, ...] = ()
    negative_logq: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.queries.shape[0])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Named arrays for the wire; scalars travel as 0-d/1-d arrays."""
        out = {
            "ticket": np.array(self.ticket.as_list(), dtype=np.int64),
            "features": self.features,
            **{name: getattr(self, name) for name in POSITION_FIELDS},
            "num_dst": np.array([b.num_dst for b in self.graph.blocks], dtype=np.int64),
        }
        for k, nodes in enumerate(self.graph.node_sets):
            out[f"nodes_{k}"] = nodes
        for k, block in enumerate(self.graph.blocks):
            out[f"nbr_index_{k}"] = block.neighbor_index
            out[f"nbr_weight_{k}"] = block.neighbor_weight
            if block.context_index is not None:
                out[f"ctx_index_{k}"] = block.context_index
        if self.graph.context_ids is not None:
            out["context_types"] = self.graph.context_types
            out["context_ids"] = self.graph.context_ids
        for t, feats in enumerate(self.context_features):
            out[f"context_features_{t}"] = feats
        if self.negative_logq is not None and self.negative_logq.size:
            out["negative_logq"] = self.negative_logq
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "MiniBatch":
        num_dst = arrays["num_dst"]
        blocks = tuple(
            Block(int(n), arrays[f"nbr_index_{k}"], arrays[f"nbr_weight_{k}"],
                  arrays.get(f"ctx_index_{k}"))
            for k, n in enumerate(num_dst))
        node_sets = tuple(arrays[f"nodes_{k}"] for k in range(len(blocks) + 1))
        graph = ComputationGraph(node_sets, blocks, arrays.get("context_types"),
                                 arrays.get("context_ids"))
        context_features = []
        while f"context_features_{len(context_features)}" in arrays:
            context_features.append(arrays[f"context_features_{len(context_features)}"])
        return cls(ticket=Ticket.from_list(arrays["ticket"]), graph=graph,
                   features=arrays["features"],
                   **{name: arrays[name] for name in POSITION_FIELDS},
                   context_features=tuple(context_features),
                   negative_logq=arrays.get("negative_logq"))
