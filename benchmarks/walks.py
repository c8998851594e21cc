"""Random-walk throughput: interleaved kernel vs one walk at a time, PinSage
neighbourhoods, and walks over a memory-mapped graph bigger than its page-cache share.

    python benchmarks/walks.py            # full: 2M nodes / 20M edges, 1M walks x 10
    python benchmarks/walks.py --quick    # same graph, fewer walks and repeats (< 60 s)
    python benchmarks/walks.py --against main   # also: the in-memory kernel of git
                                                # revision `main` vs this tree's, alternated

Prints one JSON line.  Rates are steps (edges traversed) per second; each
figure is the best of `repeats` runs (the machine is shared, so the median is
given too), and the load average is recorded beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sampler.graph import Slot, WalkGraph  # noqa: E402
from sampler.neighbourhoods import pinsage_neighbourhoods  # noqa: E402
from sampler.walks import paged_random_walks, random_walks  # noqa: E402


def random_csr(num_nodes: int, num_edges: int, seed: int, num_cols: int | None = None):
    """Poisson degrees, uniformly random neighbours: no locality to exploit,
    the worst (and most honest) case for memory latency."""
    rng = np.random.default_rng(seed)
    deg = rng.poisson(num_edges / num_nodes, num_nodes)
    indptr = np.zeros(num_nodes + 1, np.int64)
    np.cumsum(deg, out=indptr[1:])
    cols = num_cols or num_nodes
    return indptr, rng.integers(0, cols, int(indptr[-1]), dtype=np.uint32)


def transpose(indptr, indices, num_cols):
    rows = np.repeat(np.arange(indptr.shape[0] - 1, dtype=np.uint32), np.diff(indptr))
    order = np.argsort(indices, kind="stable")
    t_ptr = np.zeros(num_cols + 1, np.int64)
    np.cumsum(np.bincount(indices, minlength=num_cols), out=t_ptr[1:])
    return t_ptr, rows[order]


def timed(fn, repeats: int) -> dict:
    """Best and median wall seconds, and best CPU seconds of the process (time
    the walker actually ran: on a shared machine, wall time also counts the
    time other processes held the core)."""
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"best": min(wall), "median": float(np.median(wall)), "cpu": min(cpu)}


def with_threads(n: int, fn):
    before = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        return fn()
    finally:
        numba.set_num_threads(before)


def plain_walks(args, out: dict) -> None:
    indptr, indices = random_csr(args.nodes, args.edges, seed=1)
    starts = np.random.default_rng(2).integers(0, args.nodes, args.walks)
    steps = args.walks * args.length
    fast = lambda: random_walks(indptr, indices, starts, args.length, 7)  # noqa: E731
    slow = lambda: random_walks(indptr, indices, starts, args.length, 7,  # noqa: E731
                                interleave=False)
    random_walks(indptr, indices, starts[:1000], args.length, 0)  # compile / load cache
    random_walks(indptr, indices, starts[:1000], args.length, 0, interleave=False)
    # Alternate the two kernels so load changes hit both alike.
    runs = {"fast": [], "slow": []}
    for _ in range(args.repeats):
        runs["fast"].append(with_threads(1, lambda: timed(fast, 1)))
        runs["slow"].append(with_threads(1, lambda: timed(slow, 1)))
    f, s = _merge(runs["fast"]), _merge(runs["slow"])
    out["walk_steps_per_s_1core"] = round(steps / f["best"])
    out["walk_steps_per_s_1core_median"] = round(steps / f["median"])
    out["walk_steps_per_cpu_s_1core"] = round(steps / f["cpu"])
    two = with_threads(2, lambda: timed(fast, args.repeats))
    out["walk_steps_per_s_2core"] = round(steps / two["best"])
    out["walk_steps_per_s_2core_median"] = round(steps / two["median"])
    out["walk_at_a_time_steps_per_s_1core"] = round(steps / s["best"])
    out["walk_at_a_time_steps_per_cpu_s_1core"] = round(steps / s["cpu"])
    out["ratio_vs_walk_at_a_time_1core"] = round(s["best"] / f["best"], 2)
    out["ratio_vs_walk_at_a_time_1core_cpu"] = round(s["cpu"] / f["cpu"], 2)
    out["graph"] = (f"{args.nodes} nodes, {int(indptr[-1])} edges; "
                    f"{args.walks} walks x {args.length}")
    if args.pecanpy_python:
        pecanpy(args, indptr, indices, starts, out)


def _merge(runs: list[dict]) -> dict:
    return {"best": min(r["best"] for r in runs), "cpu": min(r["cpu"] for r in runs),
            "median": float(np.median([r["best"] for r in runs]))}


def load_walks_at(rev: str):
    """sampler/walks.py as it is at git revision `rev`, imported as its own module
    (it imports sampler.prefetch and sampler.rng from this tree)."""
    import importlib.util
    import subprocess
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "-C", str(root), "show", f"{rev}:sampler/walks.py"],
                            check=True, capture_output=True, text=True).stdout
    import atexit
    import shutil
    tmp = Path(tempfile.mkdtemp(prefix="walks-at-"))
    atexit.register(shutil.rmtree, tmp, True)   # the copy and numba's cache of it
    path = tmp / f"walks_at_{rev.replace('/', '_').replace('~', '_')}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def against(args, out: dict) -> None:
    """The in-memory interleaved kernel at git revision args.against ("before")
    and in this tree ("after"), on the same graph and starts, alternated so that
    load changes hit both alike; the walks must be identical."""
    old = load_walks_at(args.against)
    indptr, indices = random_csr(args.nodes, args.edges, seed=1)
    starts = np.random.default_rng(2).integers(0, args.nodes, args.walks)
    steps = args.walks * args.length
    kernels = {"before": old.random_walks, "after": random_walks}
    for fn in kernels.values():
        fn(indptr, indices, starts[:1000], args.length, 0)  # compile
    same = np.array_equal(old.random_walks(indptr, indices, starts[:20000], args.length, 7),
                          random_walks(indptr, indices, starts[:20000], args.length, 7))
    runs = {k: [] for k in kernels}
    for _ in range(max(3, args.repeats)):
        for k, fn in kernels.items():
            runs[k].append(with_threads(1, lambda: timed(
                lambda: fn(indptr, indices, starts, args.length, 7), 1)))
    for k in kernels:
        r = _merge(runs[k])
        out[f"walk_steps_per_s_1core_{k}"] = round(steps / r["best"])
        out[f"walk_steps_per_s_1core_{k}_median"] = round(steps / r["median"])
        out[f"walk_steps_per_cpu_s_1core_{k}"] = round(steps / r["cpu"])
    out["against"] = args.against
    out["after_over_before"] = round(out["walk_steps_per_s_1core_after"]
                                     / out["walk_steps_per_s_1core_before"], 3)
    out["same_walks_as_before"] = bool(same)


def pinsage(args, out: dict) -> None:
    """Bipartite items/contexts, 100 walks x 10 steps per seed, top 50."""
    items, ctxs = args.nodes // 2, args.nodes // 2
    ip, ic = random_csr(items, args.edges // 2, seed=3, num_cols=ctxs)
    cp, ci = transpose(ip, ic, ctxs)
    graph = WalkGraph.from_slots("item", items, [Slot("e", "ctx", ctxs, (ip, ic), (cp, ci))], [1])
    seeds = np.random.default_rng(4).integers(0, items, args.seeds)
    run = lambda s: pinsage_neighbourhoods(graph, s, num_walks=100, walk_length=10,  # noqa: E731
                                           restart_prob=0.0, top_k=50, seed=5)
    with_threads(1, lambda: run(seeds[:50]))
    for threads in (1, 2):
        r = with_threads(threads, lambda: timed(lambda: run(seeds), args.repeats))
        out[f"pinsage_seeds_per_s_{threads}core"] = round(args.seeds / r["best"])
        out[f"pinsage_seeds_per_s_{threads}core_median"] = round(args.seeds / r["median"])
        if threads == 1:
            out["pinsage_seeds_per_cpu_s_1core"] = round(args.seeds / r["cpu"])
    out["pinsage_graph"] = f"{items} items, {ctxs} contexts, {int(ip[-1])} edges"


_PECANPY = """
import sys, time, numpy as np
from numba_progress import ProgressBar
from pecanpy.pecanpy import FirstOrderUnweighted
raw = dict(np.load(sys.argv[1]))
g = FirstOrderUnweighted(random_state=0)
g.indptr, g.indices = raw["indptr"].astype(np.uint32), raw["indices"].astype(np.uint32)
g.data = np.ones(g.indices.size, np.float32)
g.set_node_ids(None, implicit_ids=True, num_nodes=g.indptr.size - 1)
starts, length = raw["starts"].astype(np.uint32), int(sys.argv[2])
has_nbrs, move_forward = g.get_has_nbrs(), g.get_move_forward()
run = lambda s: g._random_walks(s.size, length, 0, s, has_nbrs, move_forward,
                                ProgressBar(total=s.size, disable=True))
run(starts[:100])
t = time.perf_counter(); run(starts); print(starts.size * length / (time.perf_counter() - t))
sys.stdout.flush()
import os; os._exit(0)  # numba_progress's threads hang interpreter shutdown here
"""


def pecanpy(args, indptr, indices, starts, out: dict) -> None:
    """PecanPy's first-order (uniform) walk kernel, one thread, same graph and
    starts, in the interpreter given by --pecanpy-python (its own environment:
    PecanPy pins numpy 1.x, so it never enters the project's)."""
    import subprocess
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.npz"
        np.savez(path, indptr=indptr, indices=indices, starts=starts)
        env = dict(os.environ, NUMBA_NUM_THREADS="1")
        log = Path(tmp) / "log"
        with log.open("w") as f:
            script = Path(tmp) / "pecanpy_walks.py"
            script.write_text(_PECANPY)
            done = subprocess.run([args.pecanpy_python, str(script), str(path),
                                   str(args.length)], stdin=subprocess.DEVNULL, stdout=f,
                                  stderr=subprocess.STDOUT, env=env, timeout=600)
        lines = log.read_text().strip().splitlines()
    if done.returncode != 0:
        out["pecanpy_error"] = lines[-1:]
        return
    rate = float(lines[-1])
    out["pecanpy_steps_per_s_1core"] = round(rate)
    out["ratio_vs_pecanpy_1core"] = round(out["walk_steps_per_s_1core"] / rate, 2)


def out_of_core(args, out: dict) -> None:
    """Walks over CSR files on disk, memory-mapped, with a page-cache share
    smaller than the graph.  The share is enforced without root: walks run in
    rounds that touch about `share` bytes of pages, and after each round the
    mapping is closed and the files' pages are dropped from the cache
    (posix_fadvise DONTNEED), so at most ~share of the graph is ever resident."""
    nodes, edges = args.ooc_nodes, args.ooc_edges
    share = args.ooc_share_mb << 20
    with tempfile.TemporaryDirectory(dir=args.ooc_dir) as tmp:
        paths = _write_csr(Path(tmp), *random_csr(nodes, edges, seed=6))
        graph_bytes = sum(p.stat().st_size for p in paths)
        _drop(paths)
        per_round = max(1, share // 4096 // (2 * args.length))  # ~2 new pages per step
        tiny = np.zeros(2, np.int64), np.zeros(0, np.uint32)
        for a in tiny:
            a.flags.writeable = False  # compile for read-only arrays, as memmaps are
        for walk in (random_walks, paged_random_walks):
            walk(*tiny, np.zeros(1, np.int64), args.length, 0)
        starts = np.random.default_rng(8).integers(0, nodes, args.ooc_walks)
        steps = starts.shape[0] * args.length
        for key, walk in (("ooc_steps_per_s", random_walks),
                          ("ooc_paged_steps_per_s", paged_random_walks)):
            elapsed = _rounds(paths, starts, per_round, args.length, walk)
            out[key] = round(steps / elapsed)
    out["ooc_graph_bytes"] = graph_bytes
    out["ooc_page_cache_share_bytes"] = share
    out["ooc_graph"] = (f"{nodes} nodes, {edges} edges on disk; "
                        f"{starts.shape[0]} walks x {args.length}")


def _rounds(paths, starts, per_round: int, length: int, walk) -> float:
    """Seconds to walk from every start, a round of `per_round` walks at a
    time, the graph's pages dropped from the cache after each round."""
    import mmap
    t = time.perf_counter()
    for lo in range(0, starts.shape[0], per_round):
        indptr = np.memmap(paths[0], np.int64, "r")
        indices = np.memmap(paths[1], np.uint32, "r")
        for m in (indptr, indices):
            m._mmap.madvise(mmap.MADV_RANDOM)  # no readahead: the share is small
        if walk is paged_random_walks:
            walk(indptr, indices, starts[lo:lo + per_round], length, 9, block=per_round)
        else:
            walk(indptr, indices, starts[lo:lo + per_round], length, 9)
        del indptr, indices
        _drop(paths)
    return time.perf_counter() - t


def _write_csr(root: Path, indptr, indices) -> list[Path]:
    paths = [root / "indptr.bin", root / "indices.bin"]
    for path, array in zip(paths, (indptr, indices)):
        array.tofile(path)
        with path.open("rb+") as f:
            os.fsync(f.fileno())  # dirty pages cannot be dropped; write them out first
    return paths


def _drop(paths) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer walks and repeats (< 60 s)")
    p.add_argument("--skip-ooc", action="store_true", help="skip the on-disk graph")
    p.add_argument("--ooc-dir", default=None, help="where the on-disk graph is written "
                   "(default: the system temp dir; must be a real disk, not tmpfs)")
    p.add_argument("--against", default=None, metavar="REV", help="git revision whose "
                   "sampler/walks.py is timed beside this tree's (in-memory kernel, 1 core)")
    p.add_argument("--pecanpy-python", default=None, help="python of an environment with "
                   "pecanpy installed: adds its uniform-walk kernel to the comparison")
    args = p.parse_args(argv)
    full = not args.quick
    args.nodes, args.edges, args.length = 2_000_000, 20_000_000, 10
    args.walks = 1_000_000 if full else 300_000
    args.repeats = 5 if full else 2
    args.seeds = 20_000 if full else 4_000
    args.ooc_nodes, args.ooc_edges = (8_000_000, 80_000_000) if full else (4_000_000, 40_000_000)
    args.ooc_walks = 40_000 if full else 10_000
    args.ooc_share_mb = 64 if full else 32
    return args


def main(argv=None) -> None:
    args = parse(argv)
    out = {"mode": "quick" if args.quick else "full", "cores": os.cpu_count(),
           "load_avg_1m_before": round(os.getloadavg()[0], 2)}
    t = time.perf_counter()
    if args.against:
        against(args, out)
    plain_walks(args, out)
    pinsage(args, out)
    if not args.skip_ooc:
        out_of_core(args, out)
    out["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    out["seconds"] = round(time.perf_counter() - t, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
