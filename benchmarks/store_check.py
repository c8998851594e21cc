"""Cost of the structural checks a store's CSRs get when first mapped
(graphstore/check.py): indptr monotone from 0 to the edge count, every index
below the target node count, both directions of every edge type.

    python benchmarks/store_check.py --edges 1000000000 --dir /tmp/bigstore
    python benchmarks/store_check.py --quick          # 50M edges (< 1 min)

Writes a synthetic store directly (random CSR arrays of the right shapes and
dtypes; the manifest's hashes are placeholders: `store verify` would refuse
it, opening and the checks do not read them), then times
`open_store(dir).check_structure()` with the files in the page cache (warm:
the best of 3) and evicted from it first with posix_fadvise(DONTNEED)
(cold: read from disk).  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphstore import open_store  # noqa: E402
from graphstore.format import FORMAT_VERSION, index_dtype, iter_entries  # noqa: E402

CHUNK = 1 << 25


def write_indptr(path: Path, rows: int, edges: int, rng) -> None:
    """Sorted uniform cut points: a valid indptr 0 .. edges of rows + 1 entries."""
    cuts = np.sort(rng.integers(0, edges + 1, rows - 1, dtype=np.int64))
    with open(path, "wb") as f:
        np.zeros(1, np.int64).tofile(f)
        cuts.tofile(f)
        np.array([edges], np.int64).tofile(f)


def write_indices(path: Path, edges: int, cols: int, rng) -> None:
    dtype = index_dtype(cols)
    with open(path, "wb") as f:
        for lo in range(0, edges, CHUNK):
            rng.integers(0, cols, min(CHUNK, edges - lo), dtype=np.uint32).astype(
                dtype, copy=False).tofile(f)


def entry(rel: str, dtype, n: int) -> dict:
    return {"file": rel, "dtype": np.dtype(dtype).str, "shape": [n],
            "sha256": "not-hashed-benchmark-store"}


def build(root: Path, edges: int, items: int, users: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    spec = {"src_type": "item", "dst_type": "user", "num_edges": edges, "weighted": False}
    for direction, rows, cols in (("forward", items, users), ("reverse", users, items)):
        base = root / "edges" / "rates" / direction
        base.mkdir(parents=True)
        write_indptr(base / "indptr.bin", rows, edges, rng)
        write_indices(base / "indices.bin", edges, cols, rng)
        rel = f"edges/rates/{direction}"
        spec[direction] = {"indptr": entry(f"{rel}/indptr.bin", np.int64, rows + 1),
                           "indices": entry(f"{rel}/indices.bin", index_dtype(cols), edges)}
    for t, n in (("item", items), ("user", users)):
        ids = root / "ids" / t
        ids.mkdir(parents=True)
        np.arange(n, dtype=np.int64).tofile(ids / "values.bin")
        np.arange(n, dtype=np.int64).tofile(ids / "keys.bin")
        np.arange(n, dtype=index_dtype(n)).tofile(ids / "order.bin")
    manifest = {"format_version": FORMAT_VERSION, "edge_types": {"rates": spec},
                "node_types": {t: {"count": n, "ids": {"kind": "int", "files": {
                    "values": entry(f"ids/{t}/values.bin", np.int64, n),
                    "keys": entry(f"ids/{t}/keys.bin", np.int64, n),
                    "order": entry(f"ids/{t}/order.bin", index_dtype(n), n)}}}
                    for t, n in (("item", items), ("user", users))}}
    (root / "manifest.json").write_text(json.dumps(manifest))


def evict(root: Path, manifest: dict) -> None:
    for e in iter_entries(manifest):
        fd = os.open(root / e["file"], os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def timed_check(root: Path) -> float:
    t = time.perf_counter()
    open_store(root).check_structure()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--edges", type=int, default=1_000_000_000)
    p.add_argument("--items", type=int, default=10_000_000)
    p.add_argument("--users", type=int, default=100_000_000)
    p.add_argument("--dir", type=Path, default=Path("/tmp/sagewalk-bench-store"))
    p.add_argument("--keep", action="store_true", help="keep the store for another run")
    p.add_argument("--quick", action="store_true", help="50M edges, 1M items, 5M users")
    args = p.parse_args()
    if args.quick:
        args.edges, args.items, args.users = 50_000_000, 1_000_000, 5_000_000
    if not (args.dir / "manifest.json").is_file():
        shutil.rmtree(args.dir, ignore_errors=True)
        t = time.perf_counter()
        build(args.dir, args.edges, args.items, args.users, seed=1)
        built_s = time.perf_counter() - t
    else:
        built_s = None
    store = open_store(args.dir)
    nbytes = sum(int(np.prod(e["shape"])) * np.dtype(e["dtype"]).itemsize
                 for e in iter_entries(store.manifest))
    load = os.getloadavg()[0]
    evict(args.dir, store.manifest)
    cold = timed_check(args.dir)
    warm = min(timed_check(args.dir) for _ in range(3))
    print(json.dumps({"edges": args.edges, "items": args.items, "users": args.users,
                      "store_bytes": nbytes, "build_s": built_s and round(built_s, 1),
                      "check_cold_s": round(cold, 2), "check_warm_s": round(warm, 2),
                      "warm_gb_per_s": round(nbytes / warm / 1e9, 2),
                      "cold_gb_per_s": round(nbytes / cold / 1e9, 2),
                      "load_avg_1m_before": load, "cores": os.cpu_count()}))
    if not args.keep:
        shutil.rmtree(args.dir)


if __name__ == "__main__":
    main()
