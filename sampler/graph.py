"""The graph the walks run on: items linked through context nodes.

A PinSage step goes item -> context -> item.  On a multipartite store there
may be several edge types touching the item type (item-board, item-user, ...);
each is a *slot* with its own context id range and a probability of being
taken (sampler.context_weights).  The kernels see one layout:

    item_ptr [num_items * T + 1]  row item*T + t: the item's contexts in slot t
    item_ctx [E]                  global context ids (slot t owns ctx_offsets[t]..)
    ctx_ptr  [C + 1], ctx_item [E]  a context's items

With one slot (the common bipartite case) these are the store's own memmapped
arrays, copied nowhere.  With several, the slots are interleaved into new
arrays once, when the WalkGraph is built.  An item-item edge type is a slot
whose context is the neighbour item itself (ctx_ptr is the identity).
Edge weights are not used: steps are uniform among a node's edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from common.errors import ConfigError
from graphstore.errors import StoreError


class CorruptGraphError(StoreError, ValueError):  # ValueError: what callers caught before
    """A kernel met an id outside the walk graph: the store's CSR is damaged."""


@dataclass(frozen=True)
class Slot:
    """One edge type as the walks see it: `item_side` CSR (item -> context) and
    `context_side` CSR (context -> item), both (indptr int64, indices)."""

    edge_type: str
    context_type: str
    num_contexts: int
    item_side: tuple[np.ndarray, np.ndarray]
    context_side: tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class WalkGraph:
    item_type: str
    num_items: int
    edge_types: tuple[str, ...]          # one per slot
    context_types: tuple[str, ...]       # distinct context node types, in slot order
    slot_context_type: np.ndarray        # int16 [T] index into context_types per slot
    ctx_offsets: np.ndarray              # int64 [T+1] global context id range per slot
    type_cum: np.ndarray                 # float64 [T] cumulative slot probabilities
    item_ptr: np.ndarray
    item_ctx: np.ndarray
    ctx_ptr: np.ndarray
    ctx_item: np.ndarray
    source: str = ""                     # the store's path, for error messages
    paged: bool = False                  # walk with paging (sampler/paging.py): not in memory
    choice: object = None                # paging.WalkChoice: measure both kernels, run the faster

    @property
    def num_slots(self) -> int:
        return len(self.edge_types)

    @classmethod
    def from_store(cls, store, item_type: str, context_weights: dict[str, float] | None = None
                   ) -> "WalkGraph":
        """Slots from the store's edge types touching `item_type`, weighted by
        `context_weights` (edge type -> weight; empty: every such type, equally)."""
        if item_type not in store.node_types:
            raise ConfigError(f"sampler.item_type: {item_type!r} is not a node type of the "
                              f"store; it has: {', '.join(store.node_types)}")
        touching = [e for e in store.edge_types.values() if item_type in (e.src_type, e.dst_type)]
        weights = dict(context_weights or {}) or {e.name: 1.0 for e in touching}
        names = {e.name for e in touching}
        for name, w in weights.items():
            if name not in names:
                raise ConfigError(
                    f"sampler.context_weights: {name!r} is not an edge type touching "
                    f"{item_type!r}; choose from: {', '.join(sorted(names)) or 'none'}")
            if not w >= 0:
                raise ConfigError(f"sampler.context_weights.{name}: must be >= 0, got {w!r}")
        slots = [_slot(store, e, item_type) for e in touching if weights.get(e.name, 0) > 0]
        if not slots:
            raise ConfigError(f"sampler.context_weights: no edge type touching {item_type!r} "
                              "has a positive weight, so no walk can leave its seed")
        return cls.from_slots(item_type, store.node_types[item_type], slots,
                              [weights[s.edge_type] for s in slots], source=str(store.path))

    @classmethod
    def from_slots(cls, item_type: str, num_items: int, slots: list[Slot],
                   weights: list[float], source: str = "") -> "WalkGraph":
        """Assemble the kernels' layout (tests build slots from numpy arrays)."""
        for s in slots:
            if s.item_side[0].shape[0] != num_items + 1:
                raise ValueError(f"slot {s.edge_type!r}: item-side indptr has "
                                 f"{s.item_side[0].shape[0]} entries, expected {num_items + 1}")
        probs = np.asarray(weights, np.float64)
        ctx_types = tuple(dict.fromkeys(s.context_type for s in slots))
        offsets = np.zeros(len(slots) + 1, np.int64)
        offsets[1:] = np.cumsum([s.num_contexts for s in slots])
        if len(slots) == 1:
            (ip, ic), (cp, ci) = slots[0].item_side, slots[0].context_side
        else:
            ip, ic, cp, ci = _interleave(slots, num_items, offsets, source)
        return cls(item_type, num_items, tuple(s.edge_type for s in slots), ctx_types,
                   np.array([ctx_types.index(s.context_type) for s in slots], np.int16),
                   offsets, np.cumsum(probs / probs.sum()), ip, ic, cp, ci, source)

    def corrupt_error(self, doing: str) -> CorruptGraphError:
        """The error a wrapper raises when a kernel reports a stored id or
        offset outside the graph (the kernels never raise themselves)."""
        where = self.source or "the walk graph"
        return CorruptGraphError(
            f"{where}: {doing}: the store's CSR arrays are corrupt: an id in the files of "
            f"edge types "
            f"{', '.join(self.edge_types)} (edges/<type>/*/indices.bin) lies outside the "
            f"node counts ({self.num_items} {self.item_type}, {int(self.ctx_offsets[-1])} "
            "contexts) or an offset (indptr.bin) outside its edges; expected every id "
            "below its type's count: the files changed after the store was opened; fix: "
            "run `sagewalk store verify` on the store and rebuild it with `sagewalk ingest`")

    def degrees(self) -> np.ndarray:
        """int64 [num_items]: contexts of each item over every slot."""
        d = np.diff(np.asarray(self.item_ptr))
        return d.reshape(self.num_items, self.num_slots).sum(axis=1)

    def context_of(self, global_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(context type index int16, dense id int64) of global context ids (-1 stays -1)."""
        g = np.asarray(global_ids, np.int64)
        slot = np.clip(np.searchsorted(self.ctx_offsets, g, side="right") - 1, 0,
                       self.num_slots - 1)
        types = np.where(g >= 0, self.slot_context_type[slot], -1).astype(np.int16)
        return types, np.where(g >= 0, g - self.ctx_offsets[slot], -1)


def _slot(store, etype, item_type: str) -> Slot:
    if etype.src_type == item_type and etype.dst_type == item_type:
        fwd = store.csr(etype.name)
        n = store.node_types[item_type]
        ident = (np.arange(n + 1, dtype=np.int64), np.arange(n, dtype=np.int64))
        return Slot(etype.name, item_type, n, (fwd.indptr, fwd.indices), ident)
    item_is_src = etype.src_type == item_type
    item_side = store.csr(etype.name, reverse=not item_is_src)
    ctx_side = store.csr(etype.name, reverse=item_is_src)
    ctx_type = etype.dst_type if item_is_src else etype.src_type
    return Slot(etype.name, ctx_type, store.node_types[ctx_type],
                (item_side.indptr, item_side.indices), (ctx_side.indptr, ctx_side.indices))


def _interleave(slots, num_items, offsets, source=""):
    """Several slots -> one layout.  Context ids become global (offset per slot);
    uint32 when every id fits (halves the gathers' cache footprint), else int64."""
    t = len(slots)
    id_dtype = np.uint32 if max(offsets[-1], num_items) < 2**32 else np.int64
    deg = np.stack([np.diff(np.asarray(s.item_side[0])) for s in slots], axis=1)
    item_ptr = np.zeros(num_items * t + 1, np.int64)
    np.cumsum(deg.reshape(-1), out=item_ptr[1:])
    item_ctx = np.empty(int(item_ptr[-1]), id_dtype)
    for k, s in enumerate(slots):
        # Ids become global here: one too large for its slot would alias a
        # context of the next slot, which no later bounds check could see.
        if _scatter_slot(np.asarray(s.item_side[0]), np.asarray(s.item_side[1]), item_ptr, t,
                         k, offsets[k], s.num_contexts, item_ctx):
            raise CorruptGraphError(
                f"{source or 'walk graph'}: edge type {s.edge_type!r}: an item-side id is "
                f"not a dense {s.context_type} id (expected 0..{s.num_contexts - 1}); the "
                "store's indices.bin is damaged; fix: run `sagewalk store verify` and "
                "rebuild the store with `sagewalk ingest`")
    ctx_ptr = np.zeros(offsets[-1] + 1, np.int64)
    pieces, base = [], 0
    for k, s in enumerate(slots):
        cp = np.asarray(s.context_side[0])
        ctx_ptr[offsets[k] + 1:offsets[k + 1] + 1] = cp[1:] + base
        base += int(cp[-1])
        pieces.append(np.asarray(s.context_side[1]).astype(id_dtype))
    ctx_item = np.concatenate(pieces) if pieces else np.empty(0, id_dtype)
    return item_ptr, item_ctx, ctx_ptr, ctx_item


@numba.njit(nogil=True, cache=True)
def _scatter_slot(indptr, indices, item_ptr, t, k, offset, num_contexts, out):
    """Copy slot k's rows into the interleaved layout; True (the copy stops
    there) if an id is outside 0..num_contexts-1."""
    for i in range(indptr.shape[0] - 1):
        dst = item_ptr[i * t + k]
        for j in range(indptr[i], indptr[i + 1]):
            c = np.int64(indices[j])
            if c < 0 or c >= num_contexts:
                return True
            out[dst] = c + offset
            dst += 1
    return False
