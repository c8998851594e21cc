"""Receive-side conversion: narrow wire dtypes widened once, with numpy."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "worker"))
from synthetic import synthetic_batch  # noqa: E402

from gpu_consumer.receiver import to_tensor_batch  # noqa: E402
from gpu_consumer.tensors import widen  # noqa: E402
from worker.ticket import Ticket  # noqa: E402


def test_widen_keeps_values_and_shares_what_is_already_wide():
    batch = synthetic_batch(Ticket(0, 1, 5, 2))
    wide = widen(batch)
    assert wide.graph.blocks[0].neighbor_index.dtype == np.int64
    np.testing.assert_array_equal(wide.graph.blocks[0].neighbor_index,
                                  batch.graph.blocks[0].neighbor_index)
    np.testing.assert_array_equal(wide.hard_negatives, batch.hard_negatives)
    assert wide.queries.dtype == np.int64 and wide.hard_negatives.shape == (8, 2)
    assert wide.graph.node_sets[0] is batch.graph.node_sets[0]  # already int64: no copy
    assert wide.features is batch.features                      # features keep their dtype


def test_tensor_batch_needs_no_torch_conversion():
    tb = to_tensor_batch(synthetic_batch(Ticket(0, 1, 5, 2), dtype=np.float16), pin=False)
    assert tb.nbr_index[0].dtype == torch.int64 and tb.queries.dtype == torch.int64
    assert tb.features.dtype == torch.float16 and tb.ticket == Ticket(0, 1, 5, 2)
