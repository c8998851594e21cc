"""Synthetic bipartite item-user graphs with planted item communities.

Item i belongs to community i % C.  Each user has a home community (u % C);
an edge picks a user with power-law popularity, then, with probability
`p_in`, an item of the user's home community (else of a uniformly random
community), the item again by power-law popularity within the community.
So item degrees and user degrees are both heavy-tailed, and items of one
community share users: the ground truth a good embedding should recover.

With `subcommunities` S > 1 the structure has a second, finer scale: each
community splits into S leaves (item i's leaf is i % (C x S), inside its
community), each user has a home leaf (u % (C x S), inside its home
community), and an edge that stays in the home community lands, with
probability `p_sub`, on an item of the home leaf.  Items of one leaf are then
closer than items of one community, which are closer than the rest: the
"related, but less than the positive" band that PinSage's hard negatives are
drawn from exists.  S = 1 gives the same edges as before, draw for draw.

Edges are generated in fixed-size blocks, each from its own seed derived from
(seed, block), so any size streams in constant memory and the same arguments
give the same edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

BLOCK = 1 << 20


@dataclass(frozen=True)
class SynthParams:
    num_edges: int
    num_items: int
    num_users: int
    num_communities: int = 10
    seed: int = 0
    p_in: float = 0.8
    item_exponent: float = 1.1    # popularity ~ rank^-exponent
    user_exponent: float = 1.1
    subcommunities: int = 1       # leaves per community (1: one scale)
    p_sub: float = 0.0            # P(home leaf | home community)

    def __post_init__(self):
        if min(self.num_items, self.num_users, self.num_communities) < 1 or self.num_edges < 0:
            raise ValueError("synth needs edges >= 0 and items, users, communities >= 1")
        if self.num_communities > self.num_items:
            raise ValueError(f"synth: {self.num_communities} communities for "
                             f"{self.num_items} items; need communities <= items")
        if self.subcommunities < 1 or self.num_communities * self.subcommunities > self.num_items:
            raise ValueError(f"synth: {self.subcommunities} subcommunities of each of "
                             f"{self.num_communities} communities for {self.num_items} items; "
                             f"need 1 <= subcommunities and communities x subcommunities <= items")
        if not 0.0 <= self.p_sub <= 1.0:
            raise ValueError(f"synth: p_sub {self.p_sub} is not a probability")

    @property
    def num_leaves(self) -> int:
        return self.num_communities * self.subcommunities


@dataclass(frozen=True)
class SynthGraph:
    items: np.ndarray          # int64 [num_edges]: item of each edge
    users: np.ndarray          # int64 [num_edges]
    communities: np.ndarray    # int64 [num_items]: community of each item


def power_law_ranks(u: np.ndarray, n, exponent: float) -> np.ndarray:
    """Ranks 0..n-1 (n an int or one per draw) with P(rank k) ~ (k+1)^-exponent (inverse CDF of the
    continuous power law on [1, n+1), floored)."""
    a = 1.0 - exponent
    if abs(a) < 1e-9:
        x = np.exp(u * np.log(n + 1.0))
    else:
        x = ((np.power(n + 1.0, a) - 1.0) * u + 1.0) ** (1.0 / a)
    return np.minimum(x.astype(np.int64) - 1, n - 1).clip(0)


def item_communities(p: SynthParams) -> np.ndarray:
    return np.arange(p.num_items, dtype=np.int64) % p.num_communities


def item_leaves(p: SynthParams) -> np.ndarray:
    """Each item's leaf (subcommunity), numbered so that leaf % C is its community."""
    return np.arange(p.num_items, dtype=np.int64) % p.num_leaves


def edge_blocks(p: SynthParams) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(items, users) int64 blocks of at most BLOCK edges, in order."""
    C = p.num_communities
    for block, start in enumerate(range(0, p.num_edges, BLOCK)):
        m = min(BLOCK, p.num_edges - start)
        rng = np.random.default_rng([p.seed, block])
        users = power_law_ranks(rng.random(m), p.num_users, p.user_exponent)
        home = users % C
        inside = rng.random(m) < p.p_in
        community = np.where(inside, home, rng.integers(0, C, m))
        size = (p.num_items - community + C - 1) // C   # items in each edge's community
        u = rng.random(m)
        items = community + C * power_law_ranks(u, size, p.item_exponent)
        if p.subcommunities > 1:        # drawn after the one-scale draws, so S = 1 is unchanged
            L = p.num_leaves
            leafward = inside & (rng.random(m) < p.p_sub)
            leaf = users[leafward] % L
            k = power_law_ranks(u[leafward], (p.num_items - leaf + L - 1) // L, p.item_exponent)
            items[leafward] = leaf + L * k
        yield items, users


def generate(num_edges: int, num_items: int, num_users: int, num_communities: int = 10,
             seed: int = 0, **kwargs) -> SynthGraph:
    """A small graph in memory (tests): every edge block concatenated."""
    p = SynthParams(num_edges, num_items, num_users, num_communities, seed, **kwargs)
    blocks = list(edge_blocks(p))
    items = np.concatenate([b[0] for b in blocks]) if blocks else np.zeros(0, np.int64)
    users = np.concatenate([b[1] for b in blocks]) if blocks else np.zeros(0, np.int64)
    return SynthGraph(items, users, item_communities(p))


def community_features(p: SynthParams, dim: int, noise: float, lo: int = 0,
                       hi: int | None = None, seed: int = 1) -> np.ndarray:
    """float32 [hi - lo, dim]: rows lo..hi of item features that carry the planted
    communities weakly: the item's community centre (N(0, 1), one per
    community) plus `noise` x N(0, 1).  With subcommunities, each leaf's
    centre is its community's plus an offset of its own (N(0, 1), one per
    leaf), so leaf-mates' features agree more than community-mates' do, as
    their edges do.  Rows come from fixed blocks of their own seed, so any
    slice is the same whatever the chunking."""
    hi = p.num_items if hi is None else hi
    centres = np.random.default_rng([seed, 0xC3]).standard_normal(
        (p.num_communities, dim)).astype(np.float32)
    if p.subcommunities > 1:        # one centre per leaf: leaf l lies in community l % C
        offsets = np.random.default_rng([seed, 0x1EAF]).standard_normal(
            (p.num_leaves, dim)).astype(np.float32)
        centres = centres[np.arange(p.num_leaves) % p.num_communities] + offsets
    out = np.empty((max(0, hi - lo), dim), np.float32)
    for start in range(lo - lo % BLOCK, hi, BLOCK):
        a, z = max(lo, start), min(hi, start + BLOCK)
        rng = np.random.default_rng([seed, 0xFE, start // BLOCK])
        block = rng.standard_normal((min(BLOCK, p.num_items - start), dim), dtype=np.float32)
        rows = np.arange(a, z)
        out[a - lo:z - lo] = centres[rows % len(centres)] + noise * block[a - start:z - start]
    return out


def write_features(p: SynthParams, path, dim: int, noise: float, dtype=np.float16,
                   seed: int = 1) -> None:
    """Stream community_features for every item to an [items, dim] .npy file."""
    feats = np.lib.format.open_memmap(path, "w+", np.dtype(dtype), (p.num_items, dim))
    for lo in range(0, p.num_items, BLOCK):
        hi = min(lo + BLOCK, p.num_items)
        feats[lo:hi] = community_features(p, dim, noise, lo, hi, seed)
    feats.flush()
    del feats


def write_inputs(p: SynthParams, out_dir, dim: int, noise: float) -> Path:
    """edges.npy (write_npy), features.npy (write_features, float16) and the
    spec.toml that `sagewalk ingest --spec` reads them with, int ids; returns
    the spec's path."""
    out_dir = Path(out_dir)
    write_npy(p, out_dir / "edges.npy")
    write_features(p, out_dir / "features.npy", dim, noise)
    spec = out_dir / "spec.toml"
    spec.write_text('[node_types.item]\nids = "int"\n[node_types.user]\nids = "int"\n'
                    '[[edges]]\nname = "rated"\nfile = "edges.npy"\nsrc_type = "item"\n'
                    'dst_type = "user"\nformat = "npy"\n'
                    '[[arrays]]\ntype = "item"\nfile = "features.npy"\n')
    return spec


def write_tsv(p: SynthParams, out) -> int:
    """Stream `item\\tuser` lines (with a header) to a binary file object."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    out.write(b"item\tuser\n")
    options = pcsv.WriteOptions(include_header=False, delimiter="\t")
    for items, users in edge_blocks(p):
        table = pa.table({"item": items, "user": users})
        pcsv.write_csv(table, out, write_options=options)
    return p.num_edges


def write_npy(p: SynthParams, path) -> int:
    """Stream an [num_edges, 2] (item, user) .npy array, int32 when ids fit."""
    top = max(p.num_items, p.num_users)
    dtype = np.dtype("<i4") if top < 1 << 31 else np.dtype("<i8")
    with open(path, "wb") as out:
        header = {"descr": dtype.str, "fortran_order": False, "shape": (p.num_edges, 2)}
        np.lib.format.write_array_header_2_0(out, header)
        for items, users in edge_blocks(p):
            np.stack([items, users], axis=1).astype(dtype).tofile(out)
    return p.num_edges


def write_communities(p: SynthParams, path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    table = pa.table({"item": np.arange(p.num_items), "community": item_communities(p)})
    with open(path, "wb") as out:
        out.write(b"item\tcommunity\n")
        pcsv.write_csv(table, out, write_options=pcsv.WriteOptions(include_header=False,
                                                                   delimiter="\t"))
