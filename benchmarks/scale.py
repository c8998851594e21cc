"""Larger than memory, end to end: synth -> ingest -> train -> embed -> index -> query.

One command runs the whole job the way a user would, every stage its real CLI
verb in its own process: a synthetic item-user graph (graphstore.synth, flatter
power laws than `sagewalk synth`'s defaults so few rows are duplicates) with
64-d float16 item features, `sagewalk ingest --spec`, `sagewalk train
--minutes`, `sagewalk embed --export`, `sagewalk index --kind ivf` (recall@10
against exact search on a sample) and `sagewalk serve` queried over HTTP.

    python benchmarks/scale.py --quick                  # 10M edges, < 5 minutes
    python benchmarks/scale.py                          # 300M edges, 10M items
    python benchmarks/scale.py --memory-cap 0.5 --also-uncapped

`--memory-cap F` (a fraction of the store's bytes, or bytes with a unit: 3G)
runs every stage after synth inside a memory cgroup of that size (v2 memory.max,
else a v1 memory.limit_in_bytes child group) that this script creates for its
own processes, after evicting the store from the page cache so that its pages
are charged to the capped group.  Where the machine allows neither, it says so
and exits 2.  `--also-uncapped` runs the stages first without the cap on a
store of their own, so the one JSON line holds both runs and what the cap cost.

Prints one JSON line: edges, store bytes, per-phase wall seconds, each
process's peak RSS (VmHWM polled from /proc, by role), train batches/s and
data-wait ratio, embed nodes/s, index build seconds and recall@10, query
latency p50/p99, the disk space used (peak of the work directory), and the
cap's figures.  The work directory is deleted as the run goes (each phase's
inputs once the next is done with them) unless --keep, which keeps all of it:
the store, the layer tables, the export and the index.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.memcap import CapUnavailable, MemoryCap, evict  # noqa: E402

FEATURE_DIM = 64
EMBEDDING_DIM = 64  # CONFIG's trainer.embedding_dim; the export adds beta's column
EXPONENT = 0.7       # item and user popularity ~ rank^-0.7
ROWS_PER_EDGE = 1.12  # synth rows per wanted edge (7-9% are duplicates, dropped at ingest)


# -- watching processes --------------------------------------------------------

def _children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _role(pid: int, parent_role: str | None) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return parent_role or "?"
    args = [a.decode(errors="replace") for a in argv if a]
    if "sagewalk" in args:
        rest = [a for a in args[args.index("sagewalk") + 1:] if not a.startswith("-")]
        return f"sagewalk {rest[0]}" if rest else "sagewalk"
    if any("multiprocessing" in a for a in args):
        return f"{parent_role} child" if parent_role else "child"
    return parent_role or Path(args[0]).name if args else "?"


def _memory(pid: int) -> tuple[int, int]:
    """(VmHWM, RssAnon) in bytes: the peak resident set (mapped store and table
    pages included) and the process's own memory now."""
    from common.procstat import status_bytes
    try:
        got = status_bytes(pid, "VmHWM", "RssAnon")
    except OSError:
        got = {}
    return got.get("VmHWM", 0), got.get("RssAnon", 0)


def du(path: Path) -> int:
    """Bytes allocated on disk under `path` (st_blocks, so sparse files count as written)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


class Watch(threading.Thread):
    """Polls a process tree: the peak VmHWM of each role, and the work
    directory's peak disk use."""

    def __init__(self, root_pid: int, work: Path, every_s: float = 0.25):
        super().__init__(daemon=True)
        self.root, self.work, self.every = root_pid, work, every_s
        self.peaks: dict[str, int] = {}
        self.anon_peaks: dict[str, int] = {}
        self.disk_peak = 0
        self._halt = threading.Event()

    def run(self) -> None:
        last_du = 0.0
        while not self._halt.is_set():
            self._sample()
            if time.monotonic() - last_du > 2.0:
                self.disk_peak = max(self.disk_peak, du(self.work))
                last_du = time.monotonic()
            self._halt.wait(self.every)

    def _sample(self) -> None:
        tree = _children_of()
        stack = [(self.root, None)]
        while stack:
            pid, parent_role = stack.pop()
            role = _role(pid, parent_role)
            hwm, anon = _memory(pid)
            if hwm:   # 0: gone, or a zombie
                self.peaks[role] = max(self.peaks.get(role, 0), hwm)
                self.anon_peaks[role] = max(self.anon_peaks.get(role, 0), anon)
            stack.extend((c, role) for c in tree.get(pid, []))

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.disk_peak = max(self.disk_peak, du(self.work))


def run_phase(name: str, argv: list[str], work: Path, cap: MemoryCap | None, log,
              env: dict, background: bool = False, capture: bool = False):
    """Run one CLI verb (in the cap's group when capped); returns its figures
    (with its stdout when capture), or (process, watch, start) when background."""
    log.write(f"\n$ {' '.join(argv)}\n")
    log.flush()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE if capture else log,
                            stderr=log if capture else subprocess.STDOUT, env=env, cwd=work,
                            preexec_fn=cap.join if cap else None, text=capture)
    watch = Watch(proc.pid, work)
    watch.start()
    if background:
        return proc, watch, started
    try:
        stdout = proc.communicate()[0] if capture else None
        code = proc.wait()
    except BaseException:        # stopped (SIGTERM, ^C): the phase goes with it
        proc.terminate()
        proc.wait()
        raise
    finally:
        watch.stop()
    if code != 0:
        raise SystemExit(f"scale: phase {name} failed with exit code {code}: "
                         f"{' '.join(argv)} (log: {log.name}){_cap_hint(cap)}")
    out = {"seconds": round(time.perf_counter() - started, 2), **memory(watch),
           "disk_peak_bytes": watch.disk_peak}
    # each phase's figures as it ends, so a run stopped part way still tells them
    line = f"scale: phase {name}: {json.dumps(out)}"
    log.write(line + "\n")
    log.flush()
    print(line, file=sys.stderr, flush=True)
    if capture:
        out["stdout"] = stdout
    return out


def _cap_hint(cap: MemoryCap | None) -> str:
    """Why a capped phase died, where the cap's OOM killer did it."""
    if cap is None:
        return ""
    report = cap.report()
    if not report["oom_kills"]:
        return ""
    return (f"; the memory cap's OOM killer ended it ({report['oom_kills']} kill(s) in a cap "
            f"of {report['limit_bytes'] / 2**20:.0f} MiB): a cap must hold each phase's own "
            f"memory (a trainer with torch and its model, an ingest's memory_budget) besides "
            f"the page cache; raise --memory-cap (e.g. 3G)")


def memory(watch: Watch) -> dict:
    return {"peak_rss_bytes": dict(sorted(watch.peaks.items())),
            "peak_anon_rss_bytes": dict(sorted(watch.anon_peaks.items()))}


# -- the phases --------------------------------------------------------------

def synth(work: Path, edges: int, items: int, users: int) -> dict:
    """Edges as an [N, 2] int32 .npy and item features [items, 64] float16, streamed."""
    from graphstore.synth import SynthParams, write_inputs
    started = time.perf_counter()
    rows = int(edges * ROWS_PER_EDGE)
    # features: the item's community centre + noise (graphstore.synth)
    write_inputs(SynthParams(rows, items, users, 64, 0, 0.8, EXPONENT, EXPONENT), work,
                 FEATURE_DIM, noise=1.0)
    return {"rows": rows, "seconds": round(time.perf_counter() - started, 2)}


CONFIG = """\
[graphstore]
path = "{run}/store"
memory_budget = {ingest_budget}
[sampler]
num_walks = 10
walk_length = 10
num_neighbors = 10
batch_size = {batch_size}
[worker]
producers = 2
trainer_endpoint = "ipc://{run}/trainer.sock"
control_endpoint = "ipc://{run}/control.sock"
[trainer]
hidden_dim = {dim}
embedding_dim = {dim}
run_dir = "{run}/train"
checkpoint_every_s = 120
validate_every = 0
[serving]
processes = 2
chunk_nodes = {chunk}
index = "ivf"
[monitoring]
trainer_port = 0
sampler_port = 0
producer_base_port = 0
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(port: int, items: int, n: int, log) -> dict:
    import numpy as np
    base = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    deadline = time.monotonic() + 600
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
                json.loads(r.read())
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"scale: the server on port {port} did not answer /healthz")
            time.sleep(0.2)
    ready = time.monotonic()
    ids = np.random.default_rng(2).integers(0, items, n)
    lat = []
    for i in ids.tolist():
        t = time.perf_counter()
        with urllib.request.urlopen(f"{base}/related?id={i}&k=10", timeout=30) as r:
            body = json.loads(r.read())
        lat.append(time.perf_counter() - t)
        if len(body["related"]) != 10:
            log.write(f"query {i}: {len(body['related'])} results\n")
    lat = np.array(lat) * 1000
    return {"queries": n, "server_ready_s": round(ready - t0, 2),
            "p50_ms": round(float(np.percentile(lat, 50)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2)}


def stages(work: Path, args, cap: MemoryCap | None, log) -> dict:
    """ingest, train, embed, index, serve+query in `work/run-*`; their figures."""
    run = work / ("run-capped" if cap else "run")
    run.mkdir()
    cfg = run / "scale.toml"
    # An ingest's memory_budget inside a cap: at most half of it, the rest for the page cache.
    budget = args.ingest_budget if cap is None else min(args.ingest_budget, cap.limit // 2)
    cfg.write_text(CONFIG.format(run=run, chunk=args.chunk, batch_size=args.batch_size,
                                 dim=EMBEDDING_DIM, ingest_budget=budget))
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    sw = [sys.executable, "-m", "sagewalk"]
    out = {}
    out["ingest"] = run_phase("ingest", sw + ["ingest", "--spec", str(work / "spec.toml"),
                                              "--config", str(cfg), "--json"],
                              run, cap, log, env)
    store = run / "store"
    out["store_bytes"] = du(store)
    from graphstore import open_store
    s = open_store(store)
    out["edges"] = s.csr("rated").num_edges
    out["items"] = int(s.node_types["item"])
    del s
    if args.disk_walks:
        evict(store)   # cold: the walks read the store from the disk
        disk = run_phase("disk_walks", [sys.executable, str(ROOT / "benchmarks" / "disk_walks.py"),
                                        str(store), "--seeds", str(args.disk_walk_seeds)],
                         run, cap, log, env, capture=True)
        out["disk_walks"] = {**json.loads(disk.pop("stdout").strip().splitlines()[-1]), **disk}
    if cap:
        evict(store)   # so the store's pages are charged to the capped group when read
    out["train"] = run_phase("train", sw + ["train", "--config", str(cfg), "--minutes",
                                            str(args.train_minutes)], run, cap, log, env)
    summary = json.loads((run / "train" / "run_summary.json").read_text())
    secs = float(summary.get("trained_seconds") or summary["wall_seconds"])
    out["train"].update(steps=summary["steps"], batches_per_s=round(summary["steps"] / secs, 3),
                        data_wait_ratio=round(summary["data_wait_seconds"] / secs, 4),
                        trained_seconds=secs, wire_bytes_per_batch=round(
                            summary.get("bytes_received", 0)
                            / max(1, summary.get("batches_accepted", 0))))
    if cap:
        evict(store)
    out["embed"] = run_phase("embed", sw + ["embed", "--config", str(cfg), "--export",
                                            str(run / "export"), "--no-progress"],
                             run, cap, log, env)
    out["embed"]["nodes_per_s"] = round(out["items"] / out["embed"]["seconds"], 1)
    if not args.keep:   # the tables: done with them
        shutil.rmtree(run / "train" / "embed", ignore_errors=True)
    kind = index_kind(args.index_kind, out["items"], cap)
    out["index"] = run_phase("index", sw + ["index", str(run / "export"), "--out",
                                            str(run / "index"), "--kind", kind,
                                            "--config", str(cfg)], run, cap, log, env)
    info = json.loads((run / "index" / "index.json").read_text())
    out["index"].update(kind=info["kind"], params=info["params"],
                        recall_at_10=info["recall_at_k"], recall_queries=info["recall_queries"])
    if not args.keep:
        shutil.rmtree(run / "export", ignore_errors=True)
    port = free_port()
    proc, watch, started = run_phase("serve", sw + ["serve", "--config", str(cfg), "--index",
                                                    str(run / "index"), "--port", str(port)],
                                     run, cap, log, env, background=True)
    try:
        out["query"] = query(port, out["items"], args.queries, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        watch.stop()
    out["query"].update(memory(watch))
    out["query"]["seconds"] = round(time.perf_counter() - started, 2)
    phases = ("ingest", "train", "embed", "index", "query")
    out["disk_peak_bytes"] = max(out[p]["disk_peak_bytes"] if "disk_peak_bytes" in out[p]
                                 else 0 for p in phases)
    out["disk_peak_bytes"] = max(out["disk_peak_bytes"], watch.disk_peak)
    out["phase_seconds"] = {p: out[p]["seconds"] for p in phases}
    if not args.keep:
        shutil.rmtree(run, ignore_errors=True)
    return out


def index_kind(asked: str | None, items: int, cap: MemoryCap | None) -> str:
    """--index-kind, else ivf; under a cap, ivf-sq8 when ivf's float32 lists
    (grown by doubling: ~1.4x their size, measured 3.8 GB for 2.6 GB at 10M x 65)
    would pass half of it."""
    if asked:
        return asked
    if cap is not None and items * (EMBEDDING_DIM + 1) * 4 * 1.4 > cap.limit / 2:
        return "ivf-sq8"
    return "ivf"


def parse_cap(text: str, store_bytes: int) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = text.strip().upper().removesuffix("B")
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        value = float(t)
    except ValueError:
        raise SystemExit(f"--memory-cap: expected a fraction of the store (0.5) or bytes "
                         f"with a unit (3G), got {text!r}") from None
    if 0 < value <= 1:
        return int(value * store_bytes)
    if value > 1:
        return int(value)
    raise SystemExit(f"--memory-cap: must be > 0, got {text!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="10M edges, 333k items, 1 minute of training.")
    parser.add_argument("--edges", type=int, default=300_000_000)
    parser.add_argument("--items", type=int, default=10_000_000)
    parser.add_argument("--train-minutes", type=float, default=10.0)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=512, help="sampler.batch_size")
    parser.add_argument("--no-disk-walks", dest="disk_walks", action="store_false",
                        help="Skip benchmarks/disk_walks.py on the cold store.")
    parser.add_argument("--disk-walk-seeds", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=65536, help="serving.chunk_nodes")
    parser.add_argument("--index-kind", default=None, choices=["ivf", "ivf-sq8", "hnsw"],
                        help="`sagewalk index --kind` (default ivf; under --memory-cap, "
                        "ivf-sq8 when ivf's lists would pass half the cap)")
    parser.add_argument("--ingest-budget", type=int, default=1 << 30,
                        help="graphstore.memory_budget")
    parser.add_argument("--memory-cap", default=None, metavar="F|BYTES",
                        help="Cap the stages' memory: a fraction of the store's bytes "
                        "(0.5) or an amount (3G).")
    parser.add_argument("--also-uncapped", action="store_true",
                        help="With --memory-cap: run the stages uncapped first, for the cost.")
    parser.add_argument("--dir", default=None, help="Work directory's parent (default $TMPDIR).")
    parser.add_argument("--keep", action="store_true", help="Keep the work directory whole: "
                        "store, layer tables, export and index (disk: see disk_peak_bytes).")
    args = parser.parse_args()
    if args.quick:
        args.edges, args.items = 10_000_000, 333_333
        args.train_minutes = min(args.train_minutes, 1.0)
        args.queries = min(args.queries, 500)
    items, users = args.items, args.items
    cap = None
    if args.memory_cap is not None:
        try:
            MemoryCap.check_available()
        except CapUnavailable as err:
            print(f"scale: cannot cap memory on this machine: {err}", file=sys.stderr)
            raise SystemExit(2) from None
    # SIGTERM ends the run as ^C does: the running phase is stopped and the
    # work directory deleted (finally, below), not left to fill the disk.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="sagewalk-scale-", dir=args.dir))
    log = open(work.parent / f"{work.name}.log", "w")
    print(f"scale: working in {work}, log {log.name}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    result = {"benchmark": "scale", "quick": args.quick, "target_edges": args.edges,
              "items": items, "users": users, "feature_dim": FEATURE_DIM,
              "feature_dtype": "float16", "train_minutes": args.train_minutes,
              "cores": os.cpu_count(), "load_avg_before": [round(x, 2) for x in os.getloadavg()]}
    try:
        result["synth"] = synth(work, args.edges, items, users)
        result["synth"]["input_bytes"] = du(work)
        if args.memory_cap is None or args.also_uncapped:
            result["uncapped"] = stages(work, args, None, log)
        if args.memory_cap is not None:
            store_bytes = result.get("uncapped", {}).get("store_bytes") or \
                estimate_store_bytes(work)
            limit = parse_cap(args.memory_cap, store_bytes)
            with MemoryCap(limit) as cap:
                result["capped"] = stages(work, args, cap, log)
                result["capped"]["cap"] = cap.report()
            if "uncapped" in result:
                result["cap_cost"] = cost(result["uncapped"], result["capped"])
    finally:
        log.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result))


def estimate_store_bytes(work: Path) -> int:
    """The store a capped-only run will build: CSR both ways (4-byte ids, 8-byte
    offsets) plus the features, from the input's size."""
    import numpy as np
    edges = np.load(work / "edges.npy", mmap_mode="r").shape[0]
    feats = np.load(work / "features.npy", mmap_mode="r")
    return int(edges * 8 + feats.nbytes + feats.shape[0] * 16)


def cost(free: dict, capped: dict) -> dict:
    """capped / uncapped for each phase's seconds and the train and embed rates."""
    out = {f"{p}_seconds_ratio": round(capped["phase_seconds"][p] / free["phase_seconds"][p], 3)
           for p in free["phase_seconds"]}
    out["train_batches_per_s_ratio"] = round(capped["train"]["batches_per_s"]
                                             / free["train"]["batches_per_s"], 3)
    out["embed_nodes_per_s_ratio"] = round(capped["embed"]["nodes_per_s"]
                                           / free["embed"]["nodes_per_s"], 3)
    return out


if __name__ == "__main__":
    main()
