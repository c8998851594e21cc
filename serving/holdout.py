"""Held-out edges on any store: split, baselines, evaluation.

Split (`split_store`): sample links (i, c, j) -- items i and j both linked to
context c -- and remove from the training edges the edge j - c' for every
context c' that i and j share in the source store, over every item-context
edge type (`context_types`).  A pair is accepted only when it shares at most
`max_shared` contexts (default 1: exactly the one link, one edge removed), so
after the removal the pair shares none: it cannot be read off the training
graph by any one-hop method.  An edge is removed at most once, an item never
loses its last edge (every item stays a candidate), and each unordered pair
is held out once.  Links are drawn (`draw`) as a uniform context c with two
items or more and two distinct uniform items of c ('context', the default:
every basket counts once, as pins saved to one board), or as a uniform link
edge j - c and i uniform among c's items ('edge': busy contexts dominate),
from `numpy.random.default_rng(seed)`: the same store and arguments give the
same split.  Dense graphs (ML-1M) have few pairs sharing a single context:
raise `max_shared` there.  `cut='link'` removes only the drawn link's edge
and lets the pair keep its other shared contexts (the issue's first
measurement): one-hop evidence then remains, by design.

Item-item edge types and edge types not touching the item type are copied
unchanged; the guarantee covers the item-context types only.

The holdout directory (written to a temporary sibling, renamed when complete):

    store/        the training store (every node and id kept, held-out edges gone)
    pairs.tsv     query, positive, edge type, context of the sampled link (external ids)
    removed.tsv   item, edge type, context of every removed edge (external ids)
    holdout.json  source digest, seed, fraction, counts, types, the guarantee

Evaluation (`evaluate`): each positive's rank among all items but the query
(ties half), for the model's embeddings and baselines built from the training
store by serving/baselines.py.  The query's training neighbours (items sharing
a context with it) stay candidates, as in the papers, unless
`exclude_neighbours`: then the positive -- by construction not a neighbour --
competes only with the other non-neighbours, the multi-hop question.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from common.errors import SagewalkError
from gpu_consumer.prior import queries_for
from serving import baselines, holdout_files as files
from serving.evaluate import (PairedDifference, RankMetrics, paired_difference,
                              rank_metrics, ranks_among_all)

FORMAT_VERSION = 1
BASELINES = ("itemknn", "ppr", "svd", "popularity")
GUARANTEE = ("each held-out pair shares 1..max_shared contexts in the source store over "
             "context_types; the positive's edges to all of them are removed, so the pair "
             "shares no context in the training store; every item keeps at least one edge")

GUARANTEE_LINK = ("cut 'link': each held-out pair shares 1..max_shared contexts in the source "
                  "store; only the drawn link's edge (positive - context) is removed, so the "
                  "pair may still share up to max_shared - 1 other contexts in the training "
                  "store; every item keeps at least one edge")

PROTOCOL = ("held-out edges: each positive ranked among all items but the query by the "
            "query's scores; ties count half; HR@K = P(rank <= K); MRR = mean "
            "1/ceil(rank/scale); standard errors sqrt(p(1-p)/n) and std/sqrt(n)")


class HoldoutError(SagewalkError):
    """A holdout cannot be made or read as asked."""


@dataclass(frozen=True)
class Split:
    """The outcome of `choose_links` in dense ids (context ids as in `graph`)."""
    queries: np.ndarray       # int64 [p]: item i (keeps its edges)
    positives: np.ndarray     # int64 [p]: item j (loses its edges to the shared contexts)
    contexts: np.ndarray      # int64 [p]: the sampled link's context (global id)
    removed: np.ndarray       # int64 [r]: removed edges, positions in graph's item CSR
    requested: int
    candidates_drawn: int


@dataclass(frozen=True)
class Holdout:
    """An opened holdout directory."""
    path: Path
    store: object             # graphstore.Store: the training store
    item_type: str
    context_types: tuple[str, ...]
    queries: np.ndarray       # dense item ids (the same in source and training store)
    positives: np.ndarray
    meta: dict

    @property
    def item_ids(self) -> tuple[str, ...]:
        ids = self.store.ids(self.item_type)
        return tuple(ids.to_external(np.arange(len(ids))))


def context_types_of(store, item_type: str, chosen: list[str] | None = None) -> list[str]:
    """Edge types linking `item_type` to another node type (all, or `chosen`)."""
    if item_type not in store.node_types:
        raise HoldoutError(f"item type {item_type!r} is not a node type of {store.path}; "
                           f"it has: {', '.join(store.node_types)} (pass --item-type)")
    touching = [e.name for e in store.edge_types.values()
                if (e.src_type == item_type) != (e.dst_type == item_type)]
    for name in chosen or []:
        if name not in touching:
            raise HoldoutError(f"edge type {name!r} does not link {item_type!r} to a context "
                               f"type in {store.path}; choose from: {', '.join(touching)}")
    if not touching:
        raise HoldoutError(f"no edge type of {store.path} links {item_type!r} to another "
                           "node type, so no item pair shares a context")
    return list(chosen) if chosen else touching


@numba.njit(nogil=True, cache=True)
def shared_counts(indptr, indices, a, b):
    """Contexts shared by items a[k] and b[k] (rows sorted): a merge per pair."""
    out = np.zeros(len(a), np.int64)
    for k in range(len(a)):
        x, xe = indptr[a[k]], indptr[a[k] + 1]
        y, ye = indptr[b[k]], indptr[b[k] + 1]
        n = 0
        while x < xe and y < ye:
            if indices[x] == indices[y]:
                n += 1
                x += 1
                y += 1
            elif indices[x] < indices[y]:
                x += 1
            else:
                y += 1
        out[k] = n
    return out


def choose_links(graph: baselines.Bipartite, link_edges: np.ndarray, target: int,
                 seed: int, max_shared: int = 1, draw: str = "context", cut: str = "all",
                 max_rounds: int = 30) -> Split:
    """Up to `target` pairs drawn from the edges `link_edges` (positions in graph's
    item CSR) as the module docstring says: i and j share 1..max_shared contexts
    and every edge j - c of a shared context c is removed (cut 'all') or only
    the drawn link's (cut 'link'); fewer pairs if the graph has too few."""
    rng = np.random.default_rng(seed)
    item_of_edge = np.repeat(np.arange(graph.num_items), graph.item_degrees())
    degree = graph.item_degrees().copy()
    removed: set[int] = set()
    pairs: set[tuple[int, int]] = set()
    out: list[tuple[int, int, int]] = []
    drawn = 0
    for _ in range(max_rounds):
        if len(out) >= target or len(link_edges) == 0:
            break
        m = max(4096, 8 * (target - len(out)))
        i, j, c = _draw(graph, link_edges, item_of_edge, rng, m, draw)
        drawn += m
        ok = i != j
        ok[ok] = shared_counts(graph.item_indptr, graph.item_indices, i[ok], j[ok]) <= max_shared
        for a, b, ctx in zip(i[ok].tolist(), j[ok].tolist(), c[ok].tolist()):
            key = (min(a, b), max(a, b))
            if key in pairs:
                continue
            drop = [e for e in _shared_edges(graph, a, b) if e not in removed
                    and (cut == "all" or graph.item_indices[e] == ctx)]
            if not drop or degree[b] - len(drop) < 1:
                continue
            removed.update(drop)
            pairs.add(key)
            degree[b] -= len(drop)
            out.append((a, b, ctx))
            if len(out) >= target:
                break
    arr = np.asarray(out, np.int64).reshape(-1, 3)
    return Split(arr[:, 0], arr[:, 1], arr[:, 2], np.asarray(sorted(removed), np.int64),
                 target, drawn)


def _draw(graph, link_edges, item_of_edge, rng, m: int, draw: str):
    """m candidate links (i, j, c): by 'edge' (j - c a uniform link edge, i uniform
    among c's items) or by 'context' (c uniform among the link types' contexts
    with two items or more, i and j two distinct uniform items of c)."""
    if draw == "edge":
        edge = link_edges[rng.integers(0, len(link_edges), m)]
        j, c = item_of_edge[edge], graph.item_indices[edge]
        cdeg = graph.context_degrees()[c]
        i = graph.ctx_indices[graph.ctx_indptr[c] + (rng.random(m) * cdeg).astype(np.int64)]
        return i, j, c
    linked = np.unique(graph.item_indices[link_edges])
    linked = linked[graph.context_degrees()[linked] >= 2]
    if len(linked) == 0:
        return (np.zeros(0, np.int64),) * 3
    c = linked[rng.integers(0, len(linked), m)]
    cdeg = graph.context_degrees()[c]
    a = (rng.random(m) * cdeg).astype(np.int64)
    b = (rng.random(m) * (cdeg - 1)).astype(np.int64)
    b += b >= a                      # a second, distinct position in c's row
    base = graph.ctx_indptr[c]
    return graph.ctx_indices[base + a], graph.ctx_indices[base + b], c


def _shared_edges(graph: baselines.Bipartite, i: int, j: int) -> list[int]:
    """Positions in the item CSR of j's edges to contexts i also links to."""
    lo, hi = graph.item_indptr[j], graph.item_indptr[j + 1]
    row_i = graph.item_indices[graph.item_indptr[i]:graph.item_indptr[i + 1]]
    hit = np.isin(graph.item_indices[lo:hi], row_i)
    return (lo + np.flatnonzero(hit)).tolist()


def split_store(store_path: str | os.PathLike, out_dir: str | os.PathLike, *,
                item_type: str = "item", link_types: list[str] | None = None,
                pairs: int | None = None, fraction: float | None = None, seed: int = 0,
                max_shared: int = 1, draw: str = "context", cut: str = "all",
                overwrite: bool = False) -> Path:
    """Write a holdout directory for the store at `store_path` (see the module
    docstring); `pairs` or `fraction` (of the link types' edges) says how many;
    a pair may share up to `max_shared` contexts (all its links are cut)."""
    from graphstore import open_store
    store = open_store(store_path)
    out = Path(out_dir).resolve()
    _check_out(out, overwrite)
    context_types = context_types_of(store, item_type)
    link_types = context_types_of(store, item_type, link_types)
    graph = baselines.Bipartite.from_store_types(store, item_type, context_types)
    offsets = _offsets(store, item_type, context_types)
    link_edges = _link_edges(graph, offsets, context_types, link_types)
    target = _target(pairs, fraction, len(link_edges))
    if max_shared < 1:
        raise HoldoutError(f"--max-shared must be >= 1, got {max_shared}")
    if draw not in ("context", "edge"):
        raise HoldoutError(f"--draw must be 'context' or 'edge', got {draw!r}")
    if cut not in ("all", "link"):
        raise HoldoutError(f"--cut must be 'all' or 'link', got {cut!r}")
    split = choose_links(graph, link_edges, target, seed, max_shared, draw, cut)
    if len(split.queries) == 0:
        raise HoldoutError(f"{store.path}: no item pair shares 1..{max_shared} contexts over "
                           f"{', '.join(context_types)} without taking an item's last edge; "
                           "nothing can be held out (raise --max-shared)")
    meta = {"format_version": FORMAT_VERSION, "source_store": str(Path(store.path).resolve()),
            "source_digest": store.digest, "item_type": item_type,
            "context_types": context_types, "link_types": link_types, "seed": seed,
            "fraction": fraction, "max_shared": max_shared, "draw": draw, "cut": cut,
            "guarantee": GUARANTEE if cut == "all" else GUARANTEE_LINK,
            "requested": target, "pairs": int(len(split.queries)),
            "link_edges": int(len(link_edges)), "candidates_drawn": split.candidates_drawn,
            "direction": "query keeps its edges; positive loses them"}
    _write(store, graph, out, split, offsets, context_types, meta)
    return out


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise HoldoutError(f"{out}: already exists; choose another --out or pass --overwrite")
    if out.exists() and any(out.iterdir()) and not (out / "holdout.json").is_file():
        raise HoldoutError(f"{out}: exists and is not a holdout directory; refusing to "
                           "replace it (remove it yourself or choose another --out)")


def _offsets(store, item_type: str, types: list[str]) -> dict[str, int]:
    offsets, total = {}, 0
    for name in types:
        et = store.edge_types[name]
        offsets[name] = total
        total += store.node_types[et.dst_type if et.src_type == item_type else et.src_type]
    return offsets


def _link_edges(graph, offsets: dict[str, int], types: list[str], links: list[str]):
    bounds = [offsets[t] for t in types] + [graph.num_contexts]
    keep = np.zeros(len(graph.item_indices), bool)
    for k, name in enumerate(types):
        if name in links:
            keep |= (graph.item_indices >= bounds[k]) & (graph.item_indices < bounds[k + 1])
    return np.flatnonzero(keep)


def _target(pairs: int | None, fraction: float | None, link_edges: int) -> int:
    if (pairs is None) == (fraction is None):
        raise HoldoutError("give exactly one of --pairs N or --fraction F")
    if pairs is not None and pairs < 1:
        raise HoldoutError(f"--pairs must be >= 1, got {pairs}")
    if fraction is not None and not 0 < fraction < 1:
        raise HoldoutError(f"--fraction must be in (0, 1), got {fraction}")
    return pairs if pairs is not None else max(1, round(fraction * link_edges))


def _write(store, graph, out: Path, split: Split, offsets, context_types, meta) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.holdout-", dir=out.parent))
    try:
        removed = files.removed_by_type(graph, split, offsets, context_types, store,
                                        meta["item_type"])
        train = files.write_training_store(store, tmp / "store", removed, meta["item_type"])
        meta["train_digest"] = train.digest
        meta["removed_edges"] = int(sum(len(v) for v in removed.values()))
        files.write_pairs(store, tmp / "pairs.tsv", split, offsets, context_types,
                          meta["item_type"])
        files.write_removed(store, tmp / "removed.tsv", removed, meta["item_type"])
        (tmp / "holdout.json").write_text(json.dumps(meta, indent=2) + "\n")
        if out.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, trash / "old")
            os.rename(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_holdout(path: str | os.PathLike) -> Holdout:
    """Open a holdout directory written by `split_store`."""
    from graphstore import open_store
    path = Path(path)
    try:
        meta = json.loads((path / "holdout.json").read_text())
    except (OSError, ValueError) as err:
        raise HoldoutError(f"{path}: no readable holdout.json ({err}); make one with "
                           "`sagewalk holdout --store S --out DIR`") from err
    if meta.get("format_version") != FORMAT_VERSION:
        raise HoldoutError(f"{path}/holdout.json: format version {meta.get('format_version')}, "
                           f"this sagewalk reads {FORMAT_VERSION}; make the holdout again")
    store = open_store(path / "store")
    items = store.ids(meta["item_type"])
    rows = [line.rstrip("\n").split("\t") for line in
            (path / "pairs.tsv").read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")]
    if not rows or any(len(r) != 4 for r in rows):
        raise HoldoutError(f"{path}/pairs.tsv: expected rows of 4 tab-separated columns "
                           "(query, positive, edge type, context); make the holdout again")
    q = items.to_dense([r[0] for r in rows])
    p = items.to_dense([r[1] for r in rows])
    return Holdout(path, store, meta["item_type"], tuple(meta["context_types"]),
                   np.asarray(q, np.int64), np.asarray(p, np.int64), meta)


def baseline_scorers(store, item_type: str, context_types, names=BASELINES, *,
                     restart: float = 0.15, tol: float = 1e-6, svd_dim: int = 64,
                     seed: int = 0) -> dict:
    """Named baseline scorers over `store`'s items and contexts (see BASELINES)."""
    graph = baselines.Bipartite.from_store_types(store, item_type, list(context_types))
    make = {"itemknn": lambda: baselines.ItemKNN(graph, cosine=True),
            "ppr": lambda: baselines.PersonalisedPageRank(graph, restart=restart, tol=tol),
            "svd": lambda: baselines.SVDFactors(graph, dim=svd_dim, seed=seed),
            "popularity": lambda: baselines.Popularity(graph)}
    unknown = [n for n in names if n not in make]
    if unknown:
        raise HoldoutError(f"unknown baseline {unknown[0]!r}; known: {', '.join(make)}")
    return {n: make[n]() for n in names}


def embedding_scorer(holdout: Holdout, export_dir: str | os.PathLike):
    """The model's embeddings (`sagewalk embed --export` directory) over the
    training store's items; items missing from the export score -inf.  An
    export with the candidate prior (its vectors.json) scores z_q·z_c + β_c."""
    from serving.methods import load_export
    return load_export(Path(export_dir), holdout.item_ids)


def rank_pairs(holdout: Holdout, scorers: dict, *, exclude_neighbours: bool = False
               ) -> dict[str, np.ndarray]:
    """Each named scorer's 1-based rank of every held-out positive among all
    items but the query (the order of holdout.queries), as `evaluate` ranks."""
    exclude = None
    if exclude_neighbours:
        graph = baselines.Bipartite.from_store_types(holdout.store, holdout.item_type,
                                                     list(holdout.context_types))
        exclude = baselines.ItemKNN(graph, cosine=False)
    return {name: ranks_among_all(s, holdout.queries, holdout.positives, exclude=exclude)
            for name, s in scorers.items()}


def metrics(holdout: Holdout, ranks: dict[str, np.ndarray], *, ks: tuple[int, ...] = (10, 50),
            scale: float = 100.0) -> dict[str, RankMetrics]:
    """RankMetrics of each named scorer's `rank_pairs` ranks."""
    n = holdout.store.node_types[holdout.item_type]
    return {name: rank_metrics(r, ks=ks, scale=scale, candidates=n - 1)
            for name, r in ranks.items()}


def evaluate(holdout: Holdout, scorers: dict, *, ks: tuple[int, ...] = (10, 50),
             scale: float = 100.0, exclude_neighbours: bool = False) -> dict[str, RankMetrics]:
    """RankMetrics of each named scorer on the holdout's pairs (all items candidates)."""
    return metrics(holdout, rank_pairs(holdout, scorers, exclude_neighbours=exclude_neighbours),
                   ks=ks, scale=scale)


def paired(ranks: dict[str, np.ndarray], of: str, *, ks: tuple[int, ...] = (10, 50),
           scale: float = 100.0) -> dict[str, PairedDifference]:
    """`of`'s figures minus every other scorer's, paired over the same pairs."""
    return {name: paired_difference(ranks[of], r, ks=ks, scale=scale)
            for name, r in ranks.items() if name != of}


def time_lookups(holdout: Holdout, ppr, vectors: np.ndarray | None, *, queries: int = 20,
                 k: int = 10, prior: bool = False) -> dict[str, float]:
    """Mean seconds per query: one full PPR pass (batch of one) and, given
    embeddings, an exact FAISS inner-product search for the top k (queries
    as [z ‖ 1] when the vectors carry the prior)."""
    q = holdout.queries[:queries]
    start = time.perf_counter()
    for x in q:
        ppr(np.array([x]))
    out = {"ppr_seconds_per_query": (time.perf_counter() - start) / max(len(q), 1)}
    if vectors is not None:
        from serving.index import build_faiss
        v = np.ascontiguousarray(vectors, np.float32)
        index, _ = build_faiss(v, "exact")
        q_form = np.ascontiguousarray(queries_for(v, prior))
        many = np.resize(holdout.queries, max(len(q), 200))
        start = time.perf_counter()
        for x in many:
            index.search(q_form[x:x + 1], k + 1)
        out["embedding_seconds_per_query"] = (time.perf_counter() - start) / len(many)
    return out


def table(results: dict[str, RankMetrics]) -> str:
    """The results as a fixed-width table (value +- standard error)."""
    lines = [f"{'method':<14} {'HR@10':>15} {'HR@50':>15} {'MRR':>15} {'median rank':>16}",
             "-" * 79]
    for name, r in results.items():
        cells = [f"{r.hit_rate[k]:.4f} ± {r.hit_rate_se[k]:.4f}" for k in (10, 50)]
        cells.append(f"{r.mrr:.4f} ± {r.mrr_se:.4f}")
        cells.append(f"{r.median_rank:.0f} ± {r.median_rank_se:.0f}")
        lines.append(f"{name:<14} {cells[0]:>15} {cells[1]:>15} {cells[2]:>15} {cells[3]:>16}")
    return "\n".join(lines)


def paired_table(diffs: dict[str, PairedDifference], of: str) -> str:
    """`of` minus each other scorer on the same pairs (difference +- paired SE)."""
    lines = [f"{of + ' minus':<14} {'HR@10':>17} {'HR@50':>17} {'MRR':>17}", "-" * 68]
    for name, d in diffs.items():
        cells = [f"{d.hit_rate[k]:+.4f} ± {d.hit_rate_se[k]:.4f}" for k in (10, 50)]
        cells.append(f"{d.mrr:+.4f} ± {d.mrr_se:.4f}")
        lines.append(f"{name:<14} {cells[0]:>17} {cells[1]:>17} {cells[2]:>17}")
    return "\n".join(lines)
