"""Named methods (model and baselines) as scorers over one catalogue, and the
results table every report prints.

All methods score the same catalogue (the dataset's items.tsv order), so an
item the model never saw (no row in its embeddings) is simply unrankable for
it (-inf) rather than silently shifting everyone's ids.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from serving import baselines
from serving.evaluate import EvaluationError, HeldOut, hits_at_k
from serving.vectors import read_layout

BASELINES = ("popularity", "itemknn", "randomwalk", "genre", "features", "nextitem")


class CatalogueEmbeddings(baselines.Embeddings):
    """The embedding scorer (baselines.Embeddings: z_q·z_c, or z_q·z_c + β_c
    with the prior, as the index serves them) with the export's rows aligned
    to the catalogue; rows missing from the export score -inf."""

    def __init__(self, vectors: np.ndarray, ids: list[str], catalogue: tuple[str, ...], *,
                 prior: bool = False):
        row = {x: i for i, x in enumerate(ids)}
        where = np.array([row.get(x, -1) for x in catalogue], np.int64)
        self.present = where >= 0
        aligned = np.zeros((len(catalogue), vectors.shape[1]), np.float32)
        aligned[self.present] = np.asarray(vectors, np.float32)[where[self.present]]
        super().__init__(aligned, prior=prior)

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        scores = super().__call__(queries)
        scores[:, ~self.present] = -np.inf
        return scores


def load_export(export_dir: Path, catalogue: tuple[str, ...]) -> CatalogueEmbeddings:
    export_dir = Path(export_dir)
    try:
        vectors = np.load(export_dir / "embeddings.npy", mmap_mode="r")
        ids = (export_dir / "ids.txt").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as err:
        raise EvaluationError(f"{export_dir}: {err.filename} missing; write it with "
                              "`sagewalk embed --export DIR`") from err
    prior = read_layout(export_dir, vectors.shape[1]).prior   # VectorsError if inconsistent
    scorer = CatalogueEmbeddings(vectors, ids, catalogue, prior=prior)
    if not scorer.present.any():
        raise EvaluationError(f"{export_dir}: none of its {len(ids)} ids are in the dataset's "
                              f"catalogue (e.g. {ids[:1]} vs {list(catalogue[:1])}); embed the "
                              "store built from this dataset")
    return scorer


def baseline(name: str, held: HeldOut, dataset: Path | None = None,
             store_features: np.ndarray | None = None):
    """A baseline scorer by name (see BASELINES)."""
    graph = baselines.Bipartite.from_pairs(held.train.items, held.train.users,
                                           len(held.item_ids), held.num_users)
    if name == "popularity":
        return baselines.Popularity(graph)
    if name == "itemknn":
        return baselines.ItemKNN(graph, cosine=True)
    if name == "randomwalk":
        return baselines.RandomWalk(graph, hops=1)
    if name == "genre":
        if dataset is None or not (Path(dataset) / "item_features.npy").exists():
            raise EvaluationError("baseline 'genre' needs the dataset's item_features.npy")
        # Column 0 is the year; the rest are the genre one-hot columns.
        return baselines.FeatureSimilarity(np.load(Path(dataset) / "item_features.npy")[:, 1:])
    if name == "features":
        if store_features is None:
            raise EvaluationError("baseline 'features' needs the store's item features "
                                  "(title embedding); pass --store")
        return baselines.FeatureSimilarity(store_features)
    if name == "nextitem":
        path = None if dataset is None else Path(dataset) / "train_pairs.tsv"
        if path is None or not path.exists():
            raise EvaluationError("baseline 'nextitem' needs the dataset's train_pairs.tsv "
                                  "(written by `sagewalk datasets fetch`)")
        q, p = read_pairs(path, held.item_ids)
        return baselines.PairCounts(q, p, len(held.item_ids))
    raise EvaluationError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")


def read_pairs(path: Path, catalogue: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A pair file (query<TAB>positive external ids; '#' comments) in catalogue rows."""
    index = {x: i for i, x in enumerate(catalogue)}
    q, p = [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 2 or cols[0] not in index or cols[1] not in index:
                raise EvaluationError(f"{path}:{lineno}: expected two tab-separated item ids "
                                      f"of the catalogue, got {line.strip()[:80]!r}")
            q.append(index[cols[0]])
            p.append(index[cols[1]])
    return np.asarray(q, np.int64), np.asarray(p, np.int64)


def catalogue_features(store, item_type: str, catalogue: tuple[str, ...]) -> np.ndarray | None:
    """The store's item features in catalogue order (zeros for absent items)."""
    feats = store.features(item_type)
    if feats is None:
        return None
    ids = store.ids(item_type)
    rows = ids.to_external(np.arange(len(ids)))
    where = {x: i for i, x in enumerate(rows)}
    out = np.zeros((len(catalogue), feats.shape[1]), np.float32)
    for i, x in enumerate(catalogue):
        if x in where:
            out[i] = feats[where[x]]
    return out


def evaluate_methods(methods: dict, held: HeldOut, k: int = 10) -> dict[str, dict]:
    """HITS@k on validation and test for each named scorer."""
    out = {}
    for name, scorer in methods.items():
        out[name] = {f"hits@{k}_valid": round(hits_at_k(scorer, held, "valid", k), 4),
                     f"hits@{k}_test": round(hits_at_k(scorer, held, "test", k), 4)}
    return out


def table(results: dict[str, dict], k: int = 10) -> str:
    lines = [f"{'method':<24} {'HITS@%d valid' % k:>13} {'HITS@%d test' % k:>12}",
             "-" * 51]
    for name, r in results.items():
        lines.append(f"{name:<24} {r[f'hits@{k}_valid']:>13.4f} {r[f'hits@{k}_test']:>12.4f}")
    return "\n".join(lines)


def write_results(path: Path, results: dict, extra: dict | None = None) -> None:
    payload = {"protocol": "DGL PinSAGE leave-last-out by time; query = latest train item; "
               "train items excluded; HITS@K averaged over users", "methods": results}
    payload.update(extra or {})
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)
