"""FAISS index over exported embeddings, and related-item lookup by id.

An index directory holds:
    index.faiss   the FAISS index (inner product: the cosine on the unit sphere,
                  plus the candidate's β with the prior)
    index.json    kind, size, dimension, parameters, recall@k against exact
                  search, whether the vectors carry the candidate prior
    ids.txt       external id of each row
    titles.txt    display title of each row (when the store has a title attribute)
    embeddings.npy  the vectors (queries look their own vector up here)
    vectors.json  the vectors' layout (serving/vectors.py)

With the candidate prior (trainer.candidate_prior) the index holds the
candidate vectors [z ‖ β] and a query is its item's row as [z ‖ 1]
(gpu_consumer/prior.py), so one inner-product search ranks by z_q·z_c + β_c.

Small catalogues get exact search (IndexFlatIP); large ones HNSW (graph, no
training) or IVF (k-means lists, nprobe probed).  Approximate recall is always
measured against exact search on a sample of queries and written down.

Approximate indexes over vectors of unequal norms (the prior's [z ‖ β] rows)
store each row as [x ‖ √(M − |x|²)], M the largest squared norm, and search by
L2 with queries as [q ‖ 0]: every row then has norm √M, so |q' − x'|² =
|q|² + M − 2 q·x and the nearest rows are the largest inner products (the
Euclidean transform of Bachrach et al., RecSys 2014).  Clustering and graphs
by inner product over unequal norms pull every list and edge towards the
long rows; on a 333k-item export with the prior, IVF's recall@10 at nprobe
16 was 0.62 by inner product and 0.999 transformed (docs/serving.md).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from common.errors import SagewalkError
from gpu_consumer.prior import queries_for
from serving.vectors import read_layout, write_layout

log = logging.getLogger(__name__)
# faiss logs each CPU-feature probe at INFO; only its warnings matter to a user.
logging.getLogger("faiss.loader").setLevel(logging.WARNING)

AUTO_EXACT_BELOW = 100_000
INDEX_VERSION = 1
ADD_ROWS = 1 << 20     # vectors added to an index per call (bounded float32 copies)
MAX_LISTS = 4096       # IVF lists at most (nprobe 16 of them keeps recall@10 high)
TRAIN_PER_LIST = 64    # k-means sample: points per list


class ItemIndexError(SagewalkError):
    """An index cannot be built, opened or queried as asked."""


class UnknownItem(ItemIndexError):
    """A query names an id the index does not hold."""


@dataclass(frozen=True)
class IndexInfo:
    version: int
    kind: str
    num_items: int
    dim: int
    params: dict
    recall_at_k: float | None   # approximate vs exact, on a sample; None for exact
    recall_k: int
    recall_queries: int
    prior: bool = False         # last column is β: queries score as [z ‖ 1]
    norm2_max: float | None = None   # set: rows stored as [x ‖ √(M − |x|²)], searched by L2


def choose_kind(kind: str, n: int) -> str:
    if kind == "auto":
        return "exact" if n < AUTO_EXACT_BELOW else "hnsw"
    return kind


def norm2_range(vectors: np.ndarray) -> tuple[float, float]:
    """Smallest and largest squared row norm, a chunk of `vectors` at a time."""
    lo, hi = np.inf, 0.0
    for start in range(0, len(vectors), ADD_ROWS):
        n2 = _norm2(np.asarray(vectors[start:start + ADD_ROWS], np.float32))
        lo, hi = min(lo, float(n2.min())), max(hi, float(n2.max()))
    return lo, hi


def _norm2(rows: np.ndarray) -> np.ndarray:
    """Squared norm of each float32 row, without a float64 copy of a chunk."""
    return np.einsum("ij,ij->i", rows, rows)


def euclidean_norm2(vectors: np.ndarray, kind: str) -> float | None:
    """M for the Euclidean transform (module docstring) when `kind` is
    approximate and the rows' norms differ (by over 0.1%); None otherwise."""
    if kind == "exact" or not len(vectors):
        return None
    lo, hi = norm2_range(vectors)
    return hi if hi - lo > 2e-3 * hi else None


def _stored(rows: np.ndarray, norm2_max: float | None) -> np.ndarray:
    """float32 rows as the index holds them: [x ‖ √(M − |x|²)] under the transform."""
    rows = np.ascontiguousarray(rows, np.float32)
    if norm2_max is None:
        return rows
    pad = np.sqrt(np.maximum(np.float32(norm2_max) - _norm2(rows), 0.0))
    return np.ascontiguousarray(np.hstack([rows, pad[:, None]]))


def search(index, queries: np.ndarray, k: int, norm2_max: float | None = None):
    """(inner products, rows) of the k best rows for each query, whichever
    form the index stores (-1 rows where fewer than k were found)."""
    queries = np.ascontiguousarray(queries, np.float32)
    if norm2_max is None:
        return index.search(queries, k)
    padded = np.ascontiguousarray(np.hstack([queries, np.zeros((len(queries), 1), np.float32)]))
    dist, rows = index.search(padded, k)
    return ((_norm2(queries)[:, None] + np.float32(norm2_max) - dist) / 2), rows


def build_faiss(vectors: np.ndarray, kind: str, *, hnsw_m: int = 32, ef_search: int = 128,
                nlist: int | None = None, nprobe: int = 16, norm2_max: float | None = None):
    """An index of `kind` over `vectors`; with norm2_max (euclidean_norm2) an
    approximate one holds the transformed rows and measures L2."""
    import faiss
    n, d = vectors.shape
    metric = faiss.METRIC_INNER_PRODUCT
    if norm2_max is not None:
        if kind == "exact":
            raise ItemIndexError("exact search needs no Euclidean transform (norm2_max)")
        d, metric = d + 1, faiss.METRIC_L2
    if kind == "exact":
        index, params = faiss.IndexFlatIP(d), {}
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, hnsw_m, metric)
        index.hnsw.efConstruction = 2 * ef_search
        index.hnsw.efSearch = ef_search
        params = {"M": hnsw_m, "efSearch": ef_search}
    elif kind in ("ivf", "ivf-sq8"):
        # ~4 sqrt(n) lists is the usual starting point; at least 39 points per centroid
        # keeps k-means from warning and from empty lists.  Capped, and k-means fed a
        # sample of TRAIN_PER_LIST points a list: training on all of 10M items would
        # cost hours of CPU for no better centroids.  ivf-sq8 stores each vector as one
        # byte a dimension (a quarter of float32), the k-means and scale fitted together.
        nlist = nlist or max(1, min(int(4 * np.sqrt(n)), n // 39, MAX_LISTS))
        quantizer = faiss.IndexFlatIP(d) if metric == faiss.METRIC_INNER_PRODUCT \
            else faiss.IndexFlatL2(d)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, d, nlist, metric)
        else:
            index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist,
                                                  faiss.ScalarQuantizer.QT_8bit, metric)
        sample = min(n, TRAIN_PER_LIST * nlist)
        rows = np.sort(np.random.default_rng(0).choice(n, sample, replace=False)) \
            if sample < n else slice(None)
        index.train(_stored(vectors[rows], norm2_max))
        index.nprobe = min(nprobe, nlist)
        params = {"nlist": nlist, "nprobe": index.nprobe}
    else:
        raise ItemIndexError(f"index kind {kind!r}: expected 'exact', 'hnsw', 'ivf', "
                             "'ivf-sq8' or 'auto'")
    if norm2_max is not None:
        params["euclidean_transform"] = True
    for lo in range(0, n, ADD_ROWS):   # a chunk at a time: `vectors` may be a memmap
        index.add(_stored(vectors[lo:lo + ADD_ROWS], norm2_max))
    return index, params


def recall_vs_exact(index, vectors: np.ndarray, k: int = 10, queries: int = 1000,
                    seed: int = 0, *, prior: bool = False,
                    norm2_max: float | None = None) -> tuple[float, int]:
    """Mean fraction of exact top-k found by `index`, over sampled queries
    (items' own rows, in query form: [z ‖ 1] with the prior)."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), size=min(queries, len(vectors)), replace=False)
    k = min(k, len(vectors))
    q = np.ascontiguousarray(queries_for(np.asarray(vectors[rows], np.float32), prior))
    truth = _exact_top_k(q, vectors, k)
    _, got = search(index, q, k, norm2_max)
    found = [len(set(t.tolist()) & set(g.tolist())) for t, g in zip(truth, got)]
    return float(np.sum(found) / (len(rows) * k)), len(rows)


def _exact_top_k(queries: np.ndarray, vectors: np.ndarray, k: int,
                 chunk: int = 1 << 18) -> np.ndarray:
    """Rows of the k largest inner products, by brute force a chunk of `vectors`
    at a time (no second copy of the table; ties broken by lower row)."""
    import faiss
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.full((len(queries), k), -1, np.int64)
    for lo in range(0, len(vectors), chunk):
        part = np.ascontiguousarray(vectors[lo:lo + chunk], np.float32)
        flat = faiss.IndexFlatIP(part.shape[1])
        flat.add(part)
        s, i = flat.search(queries, min(k, len(part)))
        s = np.concatenate([best_s, s], axis=1)
        i = np.concatenate([best_i, i + lo], axis=1)
        order = np.lexsort((i, -s), axis=1)[:, :k]
        best_s = np.take_along_axis(s, order, axis=1)
        best_i = np.take_along_axis(i, order, axis=1)
    return best_i


def build_index(export_dir: Path, out_dir: Path, *, kind: str = "auto",
                titles: list[str] | None = None, recall_k: int = 10) -> IndexInfo:
    """Index `export_dir`'s embeddings.npy / ids.txt into `out_dir`."""
    import faiss
    export_dir, out_dir = Path(export_dir), Path(out_dir)
    vectors = np.load(export_dir / "embeddings.npy", mmap_mode="r")   # read in chunks
    ids = IdTable.read(export_dir / "ids.txt")
    if len(ids) != len(vectors):
        raise ItemIndexError(f"{export_dir}: ids.txt has {len(ids)} lines but embeddings.npy "
                          f"{len(vectors)} rows; re-export with `sagewalk embed --export`")
    layout = read_layout(export_dir, vectors.shape[1])
    kind = choose_kind(kind, len(vectors))
    norm2_max = euclidean_norm2(vectors, kind)
    index, params = build_faiss(vectors, kind, norm2_max=norm2_max)
    recall, nq = (None, 0) if kind == "exact" else recall_vs_exact(
        index, vectors, recall_k, prior=layout.prior, norm2_max=norm2_max)
    info = IndexInfo(INDEX_VERSION, kind, len(vectors), vectors.shape[1], params, recall,
                     recall_k, nq, prior=layout.prior, norm2_max=norm2_max)
    out_dir.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(out_dir / "index.faiss"))
    if out_dir.resolve() != export_dir.resolve():
        import shutil
        for name in ("embeddings.npy", "ids.txt"):
            shutil.copyfile(export_dir / name, out_dir / name)
        write_layout(out_dir, layout)
    if titles is not None:
        (out_dir / "titles.txt").write_text("".join(f"{t}\n" for t in titles),
                                            encoding="utf-8")
    (out_dir / "index.json").write_text(json.dumps(asdict(info), indent=2) + "\n")
    return info


def read_lines(path: Path) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as err:
        raise ItemIndexError(f"{path}: not found; build it with `sagewalk embed --export` "
                          "and `sagewalk index`") from err


class IdTable:
    """ids.txt as one fixed-width byte-string array (~10 bytes an id, not the
    ~150 of a Python string in a list and a dict: 10M ids in 100 MB, not 1.5 GB),
    looked up by binary search over a sorted copy of the row numbers."""

    def __init__(self, ids: np.ndarray):
        self._ids = ids
        self._order = np.argsort(ids, kind="stable")
        self._sorted = ids[self._order]

    @classmethod
    def read(cls, path: Path, chunk_lines: int = 1 << 20) -> "IdTable":
        try:
            data = np.fromfile(path, np.uint8)
        except FileNotFoundError as err:
            raise ItemIndexError(f"{path}: not found; build it with `sagewalk embed --export` "
                              "and `sagewalk index`") from err
        if data.size and data[-1] != 10:
            data = np.append(data, np.uint8(10))
        ends = np.flatnonzero(data == 10)
        starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
        width = max(1, int((ends - starts).max())) if ends.size else 1
        out = np.zeros(ends.size, f"S{width}")
        view = out.view(np.uint8).reshape(-1, width)
        cols = np.arange(width)
        for lo in range(0, ends.size, chunk_lines):   # bounded scratch: [chunk, width]
            s, e = starts[lo:lo + chunk_lines], ends[lo:lo + chunk_lines]
            pos = s[:, None] + cols
            keep = pos < e[:, None]
            view[lo:lo + len(s)] = np.where(keep, data[np.minimum(pos, data.size - 1)], 0)
        return cls(out)

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [x.decode("utf-8") for x in self._ids[i]]
        return self._ids[int(i)].decode("utf-8")

    def get(self, item_id: str, default=None):
        """The row of `item_id`, or `default` if absent."""
        try:
            return self.row(item_id)
        except KeyError:
            return default

    def row(self, item_id: str) -> int:
        """The row of `item_id`; KeyError if absent."""
        key = np.array(item_id.encode("utf-8"))
        if key.dtype.itemsize > self._ids.dtype.itemsize or not item_id:
            raise KeyError(item_id)
        at = int(np.searchsorted(self._sorted, key))
        if at >= len(self) or self._sorted[at] != key:
            raise KeyError(item_id)
        return int(self._order[at])


@dataclass(frozen=True)
class Related:
    id: str
    title: str | None
    score: float


class RelatedItems:
    """Open an index directory and answer "more like this" by external id."""

    def __init__(self, index_dir: Path):
        import faiss
        self.dir = Path(index_dir)
        meta = self.dir / "index.json"
        if not meta.exists():
            raise ItemIndexError(f"{self.dir}: no index.json; build the index with "
                              "`sagewalk index`")
        self.info = IndexInfo(**json.loads(meta.read_text()))
        if self.info.version != INDEX_VERSION:
            raise ItemIndexError(f"{meta}: index version {self.info.version}, this sagewalk "
                              f"reads {INDEX_VERSION}; rebuild with `sagewalk index`")
        self.index = faiss.read_index(str(self.dir / "index.faiss"))
        self.vectors = np.load(self.dir / "embeddings.npy", mmap_mode="r")
        self.ids = IdTable.read(self.dir / "ids.txt")
        titles = self.dir / "titles.txt"
        self.titles = read_lines(titles) if titles.exists() else None

    def lookup(self, item_id: str) -> int:
        try:
            return self.ids.row(item_id)
        except KeyError:
            raise UnknownItem(f"unknown id {item_id!r}: not among the {len(self.ids):,} "
                              f"indexed items ({self._suggest(item_id)})") from None

    def _suggest(self, item_id: str) -> str:
        import difflib
        close = difflib.get_close_matches(item_id, self.ids[:200_000], n=3, cutoff=0.5) \
            if len(item_id) < 200 else []
        if close:
            return "did you mean " + " or ".join(repr(c) for c in close) + "?"
        return f"ids are external ids as in ids.txt, e.g. {self.ids[0]!r}"

    def title(self, row: int) -> str | None:
        return self.titles[row] if self.titles is not None else None

    def related(self, item_id: str, k: int = 10) -> list[Related]:
        """The k best-scoring items for `item_id`, itself excluded, best first
        (with the prior, by z_q·z_c + β_c)."""
        if k < 1:
            raise ItemIndexError(f"k must be >= 1, got {k}")
        row = self.lookup(item_id)
        query = queries_for(np.asarray(self.vectors[row:row + 1], np.float32), self.info.prior)
        want = min(k + 1, len(self.ids))
        scores, rows = search(self.index, query, want, self.info.norm2_max)
        out = [Related(self.ids[r], self.title(r), float(s))
               for s, r in zip(scores[0], rows[0]) if r >= 0 and r != row]
        return out[:k]
