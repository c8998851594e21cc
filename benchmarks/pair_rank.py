"""How many dimensions a dot product needs to hold the next-item pair counts.

Issue 11 asks the ML-1M demo (DGL's protocol) to pass the next-item
baseline, or for a measured explanation of why a symmetric embedding cannot.
The baseline scores candidate j for query q by C[q, j] = #(q -> j) + #(j -> q),
the consecutive pairs of the training split (serving.baselines.PairCounts):
a symmetric table, so symmetry is not what it has over the model.  This
measures what a rank-k dot product can hold of it, on the same protocol and
code (serving.evaluate.hits_at_k), for the matrix M itself and for log(1 + M)
(a softmax's logits fit log-counts, up to per-row constants):

- `signed`: M's best rank-k approximation (the k eigenvalues largest in
  magnitude): what a rank-k bilinear form holds, e.g. a query tower apart
  from the candidate tower;
- `psd`: the best rank-k positive semidefinite one (the k largest positive
  eigenvalues): at most what one shared tower's Z Z^T can hold, the form the
  demo's model scores with.  (The diagonal is never ranked, so a model may
  also shift it; that cannot make a negative direction off the diagonal
  positive.)

    python benchmarks/pair_rank.py [--dataset DIR] [--ranks 16,32,64,128,256,512,1024]

DIR is `sagewalk datasets fetch ml-1m`'s directory (default: the cache's).
Prints one JSON line: HITS@10 valid / test per matrix, form and rank, the
full table's, and the share of M's squared norm in its negative eigenvalues.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pair_matrix(queries: np.ndarray, positives: np.ndarray, n: int) -> np.ndarray:
    """float64 [n, n]: C[q, j] = #(q, j) + #(j, q)."""
    m = np.zeros((n, n), np.float64)
    np.add.at(m, (queries, positives), 1.0)
    return m + m.T


def low_rank(values: np.ndarray, vectors: np.ndarray, k: int, form: str) -> np.ndarray:
    """[n, k] factors A, B with A B^T the rank-k approximation of the form."""
    if form == "signed":
        keep = np.argsort(-np.abs(values))[:k]
    elif form == "psd":
        keep = np.argsort(-values)[:k]
        keep = keep[values[keep] > 0]
    else:
        raise ValueError(f"form: expected 'signed' or 'psd', got {form!r}")
    return vectors[:, keep] * values[keep], vectors[:, keep]


def figures(held, matrix: np.ndarray, ranks: list[int]) -> dict:
    from serving.evaluate import hits_at_k
    values, vectors = np.linalg.eigh(matrix)
    out = {"full": _hits(held, lambda q: matrix[q], hits_at_k),
           "negative_share": round(float((values[values < 0] ** 2).sum() / (values ** 2).sum()),
                                   4)}
    for form in ("signed", "psd"):
        out[form] = {}
        for k in ranks:
            a, b = low_rank(values, vectors, k, form)
            out[form][str(k)] = _hits(held, lambda q: a[q] @ b.T, hits_at_k)
    return out


def _hits(held, scorer, hits_at_k) -> list[float]:
    return [round(hits_at_k(scorer, held, part), 4) for part in ("valid", "test")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=None, help="`sagewalk datasets fetch ml-1m` dir")
    parser.add_argument("--ranks", default="16,32,64,128,256,512,1024")
    args = parser.parse_args()
    from serving.evaluate import load_held_out
    from serving.methods import read_pairs
    from serving.movielens import default_cache
    dataset = Path(args.dataset) if args.dataset else default_cache() / "ml-1m"
    if not (dataset / "train_pairs.tsv").exists():
        sys.exit(f"{dataset}: no train_pairs.tsv; fetch it with `sagewalk datasets fetch ml-1m`")
    started = time.monotonic()
    held = load_held_out(dataset)
    q, p = read_pairs(dataset / "train_pairs.tsv", held.item_ids)
    counts = pair_matrix(q, p, len(held.item_ids))
    ranks = [int(x) for x in args.ranks.split(",")]
    report = {"benchmark": "pair_rank", "dataset": str(dataset), "items": len(held.item_ids),
              "pairs": len(q), "counts": figures(held, counts, ranks),
              "log_counts": figures(held, np.log1p(counts), ranks)}
    report["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
