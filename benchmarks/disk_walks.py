"""Neighbourhood walks on a store that is not in the page cache, against the
disk's random-read rate (the physical limit of that path).

    python benchmarks/disk_walks.py STORE [--seeds 2000] [--calls 1] [--walks 10 --length 10]

1. The device: 4 KiB O_DIRECT reads at random offsets of the store's largest
   file, one at a time (queue depth 1) and from 32 threads at once (QD 32).
2. The walks: `BatchBuilder.neighbourhoods` over random seeds, the store's
   pages evicted first (posix_fadvise DONTNEED), with sampler.paged_walks off
   (each page fault waits alone) and on (sampler/paging.py: each pass's pages
   requested at once), on with --resident-mb of hot rows locked, and 'auto'
   (sampler/paging.py's WalkChoice: both measured as they run, the faster
   walks; where the store fits half the memory, auto is plain).  Each mode
   runs the same --calls calls of --seeds fresh seeds from a cold cache, as a
   producer makes one call per batch.
A step is one item -> context -> item hop (up to four dependent reads: item
offsets, item's contexts, context offsets, context's items).  Prints one JSON
line: reads/s at QD1 and QD32, steps/s per mode, and steps/s as a fraction of
QD32 reads/s / 4 (every read a miss).  Run it inside a memory cap (scale.py
does) for a store bigger than the memory left for the page cache.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.memcap import evict  # noqa: E402
from graphstore.pages import drop  # noqa: E402


def random_reads(path: Path, threads: int, seconds: float) -> float:
    """4 KiB O_DIRECT reads/s at random aligned offsets of `path`."""
    import numpy as np
    size = path.stat().st_size // 4096
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def worker(t: int) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        buf = mmap.mmap(-1, 4096)     # page-aligned, as O_DIRECT needs
        rng = np.random.default_rng(t)
        try:
            while time.monotonic() < stop:
                for block in rng.integers(0, size, 256).tolist():
                    os.preadv(fd, [buf], block * 4096)
                counts[t] += 256
        finally:
            os.close(fd)
            buf.close()

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    started = time.monotonic()
    for p in pool:
        p.start()
    for p in pool:
        p.join()
    return sum(counts) / (time.monotonic() - started)


def walk_rate(store_path: Path, mode: str, resident: int, calls, cfg_args) -> dict:
    from graphstore import open_store
    from sagewalk.config import load
    from worker.assemble import BatchBuilder
    cfg = load(None, [f"sampler.paged_walks={json.dumps(mode)}", *cfg_args])
    store = open_store(store_path)
    builder = BatchBuilder(store, cfg.sampler)   # checks: reads the CSR once
    builder.neighbourhoods(calls[0][:8])   # compile / load the kernels' cache (auto: both,
    choice = builder.graph.choice          # its first call walks a slice with each)
    if choice is not None:
        warm = dict(choice.calls_run)

    def cold() -> None:   # a mapped page is not dropped from the cache: unmap, then evict
        for array in store.mapped_arrays():
            drop(array)
        evict(store_path)
    cold()
    if resident:
        from sampler import paging
        paging.resident_rows(builder.graph, resident)   # locked now: read from disk once
    started = time.perf_counter()
    for seeds in calls:
        builder.neighbourhoods(seeds)
    seconds = time.perf_counter() - started
    steps = sum(map(len, calls)) * cfg.sampler.num_walks * cfg.sampler.walk_length
    out = {"steps_per_s": round(steps / seconds), "seconds": round(seconds, 2),
           "paged": builder.graph.paged}
    if choice is not None:
        out.update(calls_paged=choice.calls_run[True] - warm[True],
                   calls_plain=choice.calls_run[False] - warm[False],
                   measured_paged=round(choice.rate(True)), measured_plain=round(choice.rate(False)))
    return out


def rerun_capped(args) -> None:
    """This script again, without --memory-cap, inside the cap; adds the cap's figures."""
    import subprocess
    from benchmarks.memcap import CapUnavailable, MemoryCap
    argv = [a for a in sys.argv[1:]]
    at = argv.index("--memory-cap")
    del argv[at:at + 2]
    try:
        cap = MemoryCap(int(args.memory_cap * (1 << 30))).__enter__()
    except CapUnavailable as err:
        raise SystemExit(f"disk_walks: cannot cap memory on this machine: {err}") from None
    try:
        done = subprocess.run([sys.executable, __file__, *argv], preexec_fn=cap.join,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"disk_walks (capped) failed: {done.stderr[-2000:]}")
        out = json.loads(done.stdout.strip().splitlines()[-1])
        out["cap"] = cap.report()
    finally:
        cap.__exit__(None, None, None)
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("--seeds", type=int, default=2000, help="Seeds per call.")
    parser.add_argument("--calls", type=int, default=1,
                        help="Calls per mode (one per batch in a producer); 'auto' measures "
                        "plain walks on a slice of each of its first 3 calls, the rest paged.")
    parser.add_argument("--walks", type=int, default=10)
    parser.add_argument("--length", type=int, default=10)
    parser.add_argument("--resident-mb", type=int, default=256)
    parser.add_argument("--read-seconds", type=float, default=5.0)
    parser.add_argument("--memory-cap", type=float, default=None, metavar="GIB",
                        help="Run inside a memory cgroup of this many GiB (benchmarks/memcap.py), "
                        "so the page cache cannot hold the store.")
    args = parser.parse_args()
    if args.memory_cap is not None:
        rerun_capped(args)
        return
    import numpy as np
    store = Path(args.store)
    biggest = max((p for p in store.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    out = {"store": str(store), "probe_file_bytes": biggest.stat().st_size}
    out["reads_per_s_qd1"] = round(random_reads(biggest, 1, args.read_seconds))
    out["reads_per_s_qd32"] = round(random_reads(biggest, 32, args.read_seconds))
    from graphstore import open_store
    items = open_store(store).node_types["item"]
    rng = np.random.default_rng(0)
    calls = [rng.integers(0, items, args.seeds) for _ in range(args.calls)]
    cfg_args = [f"sampler.num_walks={args.walks}", f"sampler.walk_length={args.length}"]
    limit = out["reads_per_s_qd32"] / 4
    for name, mode, resident in (("plain", "off", 0), ("paged", "on", 0),
                                 ("paged_resident", "on", args.resident_mb << 20),
                                 ("auto", "auto", 0)):
        r = walk_rate(store, mode, resident, calls, cfg_args)
        r["of_qd32_limit"] = round(r["steps_per_s"] / limit, 3)
        out[name] = r
    out["paged_over_plain"] = round(out["paged"]["steps_per_s"] / out["plain"]["steps_per_s"], 2)
    out["auto_over_best"] = round(out["auto"]["steps_per_s"] / max(
        out["plain"]["steps_per_s"], out["paged"]["steps_per_s"]), 2)
    out.update(seeds=args.seeds, calls=args.calls, walks=args.walks, length=args.length,
               resident_bytes=args.resident_mb << 20,
               limit_steps_per_s_qd32=round(limit), load_avg=[round(x, 2)
                                                             for x in os.getloadavg()])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
