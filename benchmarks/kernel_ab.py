"""A/B of the PinSage neighbourhood kernel between two revisions, alternating
in one process (so load changes on a shared machine hit both alike).

    git archive HEAD~1 sampler | tar -x -C /tmp/old     # the revision to compare with
    python benchmarks/kernel_ab.py --old /tmp/old [--walks 100 --length 10 --top-k 50]

One thread; graph: 1M items / 1M contexts / 10M edges, uniformly random
(benchmarks/walks.py's PinSage graph).  Prints seeds per CPU-second for each
side, best and median of 6 alternating runs, and whether the outputs agree.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sampler import walk_kernels as new  # noqa: E402
from walks import random_csr, transpose  # noqa: E402


def load_old(root: Path):
    spec = importlib.util.spec_from_file_location("old_walk_kernels",
                                                  root / "sampler" / "walk_kernels.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old", type=Path, required=True)
    p.add_argument("--walks", type=int, default=100)
    p.add_argument("--length", type=int, default=10)
    p.add_argument("--top-k", type=int, default=50)
    p.add_argument("--seeds", type=int, default=4000)
    args = p.parse_args()
    numba.set_num_threads(1)
    old = load_old(args.old)
    n = 1_000_000
    ip, ix = random_csr(n, 10_000_000, 3)
    cp, ci = transpose(ip, ix, n)
    seeds = np.random.default_rng(1).integers(0, n, args.seeds)
    block = max(1, 2048 // args.walks)

    def run(mod):
        k = args.top_k
        out = np.empty((seeds.size, k), np.int64), np.empty((seeds.size, k), np.int64)
        t = time.process_time()
        mod.neighbourhood_kernel(ip, ix, cp, ci, np.ones(1), seeds, np.zeros(seeds.size + 1,
                                 np.int64), np.empty(0, np.int64), args.walks, args.length,
                                 0.0, k, np.uint64(7), 1, block, out[0], out[1],
                                 np.empty((seeds.size, 0), np.int64))
        return seeds.size / (time.process_time() - t), out[0]

    same = np.array_equal(run(old)[1], run(new)[1])  # also compiles / loads both
    rates = {"old": [], "new": []}
    for r in range(6):
        for name, mod in ((("old", old), ("new", new)) if r % 2 == 0 else
                          (("new", new), ("old", old))):
            rates[name].append(run(mod)[0])
    print(f"same output: {same}")
    for name, v in rates.items():
        print(f"{name}: best {max(v):.0f} median {sorted(v)[3]:.0f} seeds/cpu-s "
              f"({', '.join(f'{x:.0f}' for x in v)})")


if __name__ == "__main__":
    main()
