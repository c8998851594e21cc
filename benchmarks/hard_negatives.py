"""What the hard negatives' log-proposal correction costs the producers.

Builds training batches with hard negatives on a planted-community store
(graphstore.synth, 10k items) with the settings `sagewalk train` picks for
them (batch 512, 500 uniform easy negatives, 2 hard negatives per query from
50 walks of 10 steps), with `sampler.hard_negative_correction` on and off,
interleaved so that load falls on both alike, and reports the median build
time and the message size of each, and their ratios.

    python benchmarks/hard_negatives.py [--batches 30] [--items 10000]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BATCH, EASY, HARD = 512, 500, 2


def measure(batches: int = 30, items: int = 10_000) -> dict:
    """The figures of the module docstring, one dict."""
    from graphstore import build_from_arrays
    from graphstore.synth import generate
    from sagewalk.config import load
    from worker.assemble import BatchBuilder
    from worker.ticket import Ticket
    with tempfile.TemporaryDirectory() as tmp:
        g = generate(40 * items, items, 5 * items, 200, seed=0)
        store = build_from_arrays(Path(tmp) / "store",
                                  edges={"rates": ("item", "user", g.items, g.users)})
        base = [f"sampler.batch_size={BATCH}", f"sampler.easy_negatives={EASY}",
                "sampler.hard_negative_walks=50", "sampler.hard_negative_walk_length=10"]
        builders = {on: BatchBuilder(store, load(None, base + [
            f"sampler.hard_negative_correction={'true' if on else 'false'}"]).sampler)
            for on in (True, False)}
        for b in builders.values():            # compile the kernels, read the pairs
            b.build(Ticket(2, 0, 1, HARD))
        seconds = {True: [], False: []}
        size = {}
        for i in range(batches):
            for on, b in builders.items():
                start = time.perf_counter()
                mb = b.build(Ticket(2, i % b.num_batches(2), 100 + i, HARD))
                seconds[on].append(time.perf_counter() - start)
                size[on] = sum(a.nbytes for a in mb.to_arrays().values())
    on, off = (statistics.median(seconds[k]) * 1e3 for k in (True, False))
    return {"items": items, "batches": batches, "batch_size": BATCH,
            "build_ms_corrected": round(on, 2), "build_ms_uncorrected": round(off, 2),
            "build_time_ratio": round(on / off, 3),
            "message_bytes_corrected": size[True], "message_bytes_uncorrected": size[False],
            "message_bytes_ratio": round(size[True] / size[False], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--items", type=int, default=10_000)
    args = parser.parse_args()
    print(json.dumps(measure(args.batches, args.items)))


if __name__ == "__main__":
    main()
