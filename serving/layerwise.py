"""One chunk of one stage of layer-wise inference (what each process runs).

PinSage's MapReduce inference, on memmaps instead of HDFS: every node's
deterministic neighbourhood once, then h0 for every node, then layer 1 for
every node from the h0 table, layer 2 from the layer-1 table, ..., then the
dense head.  Each stage reads whole tables written by the stage before and
writes disjoint row ranges of its own, so any number of processes can share
the work and no node's computation graph is expanded twice.

Memory: a process holds one chunk's inputs and outputs (chunk_nodes x
neighbours x hidden floats at most) plus the runtime, whatever the node
count.  The tables and the store are memory-mapped; every page a chunk
touched is unmapped from the process once the chunk is done (written rows
after they reach the file), and the previous layer's rows are gathered in
ascending order one READ_WINDOW at a time, each window unmapped once read
(graphstore/pages.py).  So the resident set does not grow with the tables:
the page cache holds them while memory allows, the disk when it does not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from graphstore.pages import drop, gather_rows

# Stage names in order; layer stages are "layer1".."layerK".
NEIGHBOURHOODS, INPUT, FINAL = "neighbourhoods", "h0", "final"
READ_WINDOW = 64 << 20   # bytes of the previous layer's table mapped at once


@dataclass(frozen=True)
class Tables:
    """The memmapped tables of an embedding job (opened in every process)."""
    neighbors: np.ndarray           # int64 [n, k], -1 padded
    weights: np.ndarray             # float32 [n, k]
    context_type: np.ndarray | None  # int64 [n, k] (MultiSage), -1 padded
    context: np.ndarray | None       # int64 [n, k]
    hidden: tuple[np.ndarray, ...]   # float32 [n, hidden] for h0, layer1..layerK
    final: np.ndarray                # float32 [n, prior.width(spec)]: [z ‖ β] with the prior


def stages(num_layers: int) -> list[str]:
    return [NEIGHBOURHOODS, INPUT] + [f"layer{i}" for i in range(1, num_layers + 1)] + [FINAL]


def open_tables(work: Path, n: int, k: int, hidden: int, dim: int, num_layers: int,
                multisage: bool, mode: str = "r+") -> Tables:
    def table(name, dtype, shape):
        return np.lib.format.open_memmap(work / f"{name}.npy", mode=mode, dtype=dtype,
                                         shape=shape if mode == "w+" else None)
    ctx = (table("context_type", np.int64, (n, k)), table("context", np.int64, (n, k))) \
        if multisage else (None, None)
    return Tables(table("neighbors", np.int64, (n, k)), table("weights", np.float32, (n, k)),
                  *ctx, tuple(table(f"h{i}", np.float32, (n, hidden))
                              for i in range(num_layers + 1)),
                  table("embeddings", np.float32, (n, dim)))


def layer_inputs(prev, neighbors, weights, rows, device="cpu"):
    """(h_self [n, d], h_nbrs [n, K, d], weights [n, K]) of `rows` (a slice or
    an index array) from the previous layer's table and the neighbourhood
    tables.  Padding (-1) reads row 0 with weight 0: it contributes nothing.
    The neighbours' rows are read window by window (`gather_rows`)."""
    nbrs = np.asarray(neighbors[rows])
    h_self = torch.from_numpy(np.array(prev[rows])).to(device)
    h_nbrs = torch.from_numpy(gather_rows(prev, np.maximum(nbrs, 0).reshape(-1),
                                          READ_WINDOW)).to(device)
    w = torch.from_numpy(np.array(weights[rows])).to(device)
    return h_self, h_nbrs.reshape(*nbrs.shape, -1), w


class ChunkRunner:
    """Holds what a process needs (store, model, tables) and runs chunks."""

    def __init__(self, store, model, tables: Tables, neighbourhood_fn, item_type: str):
        self.store, self.model, self.tables = store, model, tables
        self.neighbourhood_fn = neighbourhood_fn
        self.item_type = item_type
        self.features = store.features(item_type)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        return_large_buffers()

    def run(self, stage: str, lo: int, hi: int) -> None:
        with torch.inference_mode():
            if stage == NEIGHBOURHOODS:
                self._neighbourhoods(lo, hi)
            elif stage == INPUT:
                self._write(self.tables.hidden[0], lo, self.input_vectors(lo, hi))
            elif stage == FINAL:
                h = torch.from_numpy(np.array(self.tables.hidden[-1][lo:hi])).to(self.device)
                ids = torch.arange(lo, hi, device=self.device)
                self._write(self.tables.final, lo, self.model.finalize(h, ids))
            else:
                layer = int(stage.removeprefix("layer"))
                self._write(self.tables.hidden[layer], lo, self.convolve(layer - 1, lo, hi))
        self.release()

    def release(self) -> None:
        """Unmap every page this process touched (tables and store): the data
        stays in the files and the page cache; the resident set drops to the
        runtime and the next chunk's working set."""
        t = self.tables
        for table in (t.neighbors, t.weights, t.context_type, t.context, *t.hidden, t.final):
            if table is not None:
                drop(table)
        for array in self.store.mapped_arrays():
            drop(array)
    def _neighbourhoods(self, lo: int, hi: int) -> None:
        nb = self.neighbourhood_fn(np.arange(lo, hi, dtype=np.int64))
        k = self.tables.neighbors.shape[1]
        self.tables.neighbors[lo:hi] = _fit(nb.neighbors, k, -1)
        self.tables.weights[lo:hi] = _fit(nb.weights, k, 0.0)
        if self.tables.context is not None:
            self.tables.context_type[lo:hi] = _fit(nb.context_type, k, -1)
            self.tables.context[lo:hi] = _fit(nb.context, k, -1)
        _flush(self.tables.neighbors, self.tables.weights, self.tables.context,
               self.tables.context_type)

    def input_vectors(self, lo: int, hi: int) -> torch.Tensor:
        feats = None
        if self.features is not None:
            feats = torch.from_numpy(np.array(self.features[lo:hi], np.float32))
            feats = feats.to(self.device)
        ids = torch.arange(lo, hi, device=self.device)
        return self.model.input_vectors(feats, ids)

    def convolve(self, layer: int, lo: int, hi: int) -> torch.Tensor:
        """Layer `layer` (0-based) for rows lo:hi from the previous layer's table."""
        h_self, h_nbrs, w = layer_inputs(self.tables.hidden[layer], self.tables.neighbors,
                                         self.tables.weights, slice(lo, hi), self.device)
        if self.tables.context is None:
            return self.model.convolve(layer, h_self, h_nbrs, w)
        contexts = self.context_vectors(np.asarray(self.tables.context_type[lo:hi]),
                                        np.asarray(self.tables.context[lo:hi]))
        return self.model.convolve(layer, h_self, h_nbrs, w, contexts)

    def context_vectors(self, types: np.ndarray, ids: np.ndarray) -> torch.Tensor:
        """z_c for each (ego, neighbour) pair's dominant context; zeros where padded."""
        out = torch.zeros(*types.shape, self.model.hidden_dim, device=self.device)
        for t, name in enumerate(self.model.context_types):
            rows = np.nonzero(types == t)
            if len(rows[0]) == 0:
                continue
            cid = ids[rows]
            feats = self.store.features(name)
            feats = None if feats is None else torch.from_numpy(
                np.asarray(feats[cid], np.float32)).to(self.device)
            z = self.model.context_vectors(t, feats, torch.from_numpy(cid).to(self.device))
            out[torch.from_numpy(rows[0]), torch.from_numpy(rows[1])] = z.to(out.dtype)
        return out

    @staticmethod
    def _write(table: np.ndarray, lo: int, values: torch.Tensor) -> None:
        table[lo:lo + len(values)] = values.float().cpu().numpy()
        _flush(table)


def _fit(a: np.ndarray, k: int, pad) -> np.ndarray:
    """[n, k'] -> [n, k]: cut or pad columns (a sampler may return fewer than k)."""
    a = np.asarray(a)
    if a.shape[1] >= k:
        return a[:, :k]
    return np.pad(a, ((0, 0), (0, k - a.shape[1])), constant_values=pad)


def _flush(*tables) -> None:
    # A chunk counts as done only after its rows reach the file (resume trusts it).
    for t in tables:
        if isinstance(t, np.memmap):
            t.flush()


def return_large_buffers() -> None:
    """Have glibc serve every allocation of 1 MiB or more by its own mmap and
    give it back on free.  By default the threshold rises after the first big
    frees, the chunks' arrays then come from the heap and fragment it, and the
    resident set creeps up chunk after chunk (~70 MB over 50 chunks here)."""
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        libc.mallopt(-3, 1 << 20)   # M_MMAP_THRESHOLD (fixing it turns the rising off)
    except (OSError, AttributeError):
        pass   # not glibc: nothing to tune


def limit_threads() -> None:
    """One intra-op thread per process: N processes on N cores, not N*N threads."""
    torch.set_num_threads(int(os.environ.get("SAGEWALK_EMBED_THREADS", "1")))


def recompute_nodes(runner: ChunkRunner, nodes: np.ndarray) -> torch.Tensor:
    """Reference: each node's K-hop computation graph expanded on its own (no table
    of earlier layers, shared nodes recomputed) -- what layer-wise inference avoids.
    Reads only the neighbourhood table.  Used by tests and benchmarks/embed.py."""
    with torch.inference_mode():
        out = [runner.model.finalize(_expand(runner, np.array([v]), runner.model.num_layers),
                                     torch.tensor([v]))
               for v in np.asarray(nodes).tolist()]
    return torch.cat(out)


def _expand(runner: ChunkRunner, nodes: np.ndarray, layer: int) -> torch.Tensor:
    """h_layer of `nodes` by recursion down to the input features."""
    if layer == 0:
        feats = None
        if runner.features is not None:
            feats = torch.from_numpy(np.asarray(runner.features[nodes], np.float32))
        return runner.model.input_vectors(feats, torch.from_numpy(nodes))
    nbrs = np.asarray(runner.tables.neighbors[nodes])
    flat = np.maximum(nbrs, 0).reshape(-1)
    h_self = _expand(runner, nodes, layer - 1)
    h_nbrs = _expand(runner, flat, layer - 1).reshape(*nbrs.shape, -1)
    w = torch.from_numpy(np.asarray(runner.tables.weights[nodes]))
    if runner.tables.context is None:
        return runner.model.convolve(layer - 1, h_self, h_nbrs, w)
    ctx = runner.context_vectors(np.asarray(runner.tables.context_type[nodes]),
                                 np.asarray(runner.tables.context[nodes]))
    return runner.model.convolve(layer - 1, h_self, h_nbrs, w, ctx)
