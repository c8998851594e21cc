"""Typed records the sampler hands to the worker (and on to the trainer).

Dense ids are int64 throughout these records; narrower types are a storage
and wire decision made elsewhere.  Padding in fixed-width [n, k] arrays is
-1 for ids and 0.0 for weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Neighbourhoods:
    """Top-K visited items for each seed, weighted by normalised visit count.

    neighbors: int64 [n, k] dense item ids, -1 where a seed has fewer than k.
    weights:   float32 [n, k] visit counts normalised so each non-empty row sums
               to 1; 0 where padded (an isolated seed has an all-zero row).
    context_type, context: int16/int64 [n, k] the dominant context node for each
               (ego, neighbour) pair (MultiSage), -1 where padded; None for PinSage.
    """

    neighbors: np.ndarray
    weights: np.ndarray
    context_type: np.ndarray | None = None
    context: np.ndarray | None = None


@dataclass(frozen=True)
class Block:
    """One convolution layer of a computation graph.

    The layer's destination nodes are the first `num_dst` nodes of its source
    node set (so a node's own previous-layer vector is `h[:num_dst]`).
    neighbor_index: int32 [num_dst, k] positions in the source node set, 0 where
                    padded (weight 0 there, so padding contributes nothing).
    neighbor_weight: float32 [num_dst, k] importance weights (rows sum to 1 or 0).
    context_index:  int32 [num_dst, k] positions in the batch's context node set
                    (MultiSage), -1 where padded; None for PinSage.
    """

    num_dst: int
    neighbor_index: np.ndarray
    neighbor_weight: np.ndarray
    context_index: np.ndarray | None = None


@dataclass(frozen=True)
class ComputationGraph:
    """Per-layer node sets for a K-layer model, deduplicated.

    node_sets[0] is every node whose input features are needed; node_sets[K]
    are the targets.  node_sets[k+1] is a prefix of node_sets[k]; blocks[k]
    maps node_sets[k] to node_sets[k+1].
    context_nodes: (context type id int16 [c], dense id int64 [c]) of every
    context node a block refers to (MultiSage), or None.
    """

    node_sets: tuple[np.ndarray, ...]
    blocks: tuple[Block, ...]
    context_types: np.ndarray | None = None
    context_ids: np.ndarray | None = None

    @property
    def targets(self) -> np.ndarray:
        return self.node_sets[-1]

    @property
    def input_nodes(self) -> np.ndarray:
        return self.node_sets[0]
