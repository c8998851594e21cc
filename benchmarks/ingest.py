"""Ingest throughput and peak memory, from binary (.npy) and text (TSV) input.

    python benchmarks/ingest.py --quick            # < 60 s: 2M edges binary, 1M TSV
    python benchmarks/ingest.py                    # 10M, 30M, 100M edges, both formats
    python benchmarks/ingest.py --nodes scaled     # node counts grow with the edges

Each ingest runs in a fresh child process so that its peak RSS (ru_maxrss)
is its own; inputs come from `sagewalk synth` and are generated before
timing.  By default the node universe is fixed (500K items, 5M users) so the
series shows memory against edge count; `--nodes scaled` uses items =
edges/100 and users = edges/10.  Prints ONE JSON line: `edges`,
`edges_per_s` and `peak_rss_bytes` of the largest binary run, plus every run
(wall and CPU throughput: the machine is shared, CPU seconds show per-core
speed) and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(path: str, out: str, budget: int) -> None:
    """Run one ingest and print its timings and peak RSS as JSON."""
    sys.path.insert(0, str(ROOT))
    from graphstore.store_parts import BuildOptions
    from graphstore.ingest import ingest
    from graphstore.spec import simple_spec
    options = BuildOptions(memory_budget=budget, chunk_rows=1 << 20)
    started, cpu0 = time.perf_counter(), time.process_time()
    store, report = ingest(simple_spec(path, "item", "user"), out, options, overwrite=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": time.perf_counter() - started,
                      "cpu_seconds": time.process_time() - cpu0,
                      "peak_rss_bytes": usage.ru_maxrss * 1024,
                      "edges_kept": store.edge_types["item-user"].num_edges}))


def synth(workdir: Path, edges: int, fmt: str, scaled: bool) -> Path:
    items, users = (max(edges // 100, 100), max(edges // 10, 100)) if scaled else \
        (500_000, 5_000_000)
    path = workdir / f"synth-{edges}-{items}-{users}.{fmt}"
    if not path.exists():
        tmp = path.with_suffix(".part")
        cmd = [sys.executable, "-m", "sagewalk", "synth", "--edges", str(edges),
               "--items", str(items), "--users", str(users),
               "--communities", "50", "--format", fmt, "--out", str(tmp),
               "--communities-out", os.devnull]
        subprocess.run(cmd, check=True, cwd=ROOT)
        tmp.rename(path)
    return path


def run_one(path: Path, workdir: Path, budget: int) -> dict:
    out = workdir / "store"
    result = subprocess.run([sys.executable, __file__, "--child", str(path), str(out),
                             str(budget)], check=True, capture_output=True, text=True,
                            cwd=ROOT)
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Small run, under 60 s.")
    parser.add_argument("--sizes", default="10000000,30000000,100000000",
                        help="Comma-separated edge counts (full mode).")
    parser.add_argument("--formats", default="npy,tsv", help="npy and/or tsv.")
    parser.add_argument("--budget", type=int, default=512 << 20,
                        help="graphstore.memory_budget in bytes (default 512 MiB).")
    parser.add_argument("--nodes", choices=("fixed", "scaled"), default="fixed",
                        help="Node universe fixed (500K items, 5M users) or growing with "
                        "the edges (quick mode: scaled).")
    parser.add_argument("--workdir", default="/tmp/sagewalk-bench-ingest")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], int(args.child[2]))
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    plan = [("npy", 2_000_000), ("tsv", 1_000_000)] if args.quick else [
        (f, int(n)) for f in args.formats.split(",") for n in args.sizes.split(",")]
    scaled = args.quick or args.nodes == "scaled"
    run_one(synth(workdir, 10_000, "npy", True), workdir, args.budget)  # warm numba's cache
    runs = []
    for fmt, edges in plan:
        result = run_one(synth(workdir, edges, fmt, scaled), workdir, args.budget)
        runs.append({"format": fmt, "edges": edges, **{k: round(v, 3) if isinstance(v, float)
                                                       else v for k, v in result.items()},
                     "edges_per_s": round(edges / result["seconds"]),
                     "edges_per_cpu_s": round(edges / result["cpu_seconds"])})
    main_run = max((r for r in runs if r["format"] == "npy"), key=lambda r: r["edges"],
                   default=runs[-1])
    print(json.dumps({"edges": main_run["edges"], "edges_per_s": main_run["edges_per_s"],
                      "peak_rss_bytes": max(r["peak_rss_bytes"] for r in runs),
                      "memory_budget": args.budget, "nodes": "scaled" if scaled else "fixed",
                      "load_avg": os.getloadavg(),
                      "cpus": os.cpu_count(), "runs": runs}))


if __name__ == "__main__":
    main()
