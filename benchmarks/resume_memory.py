"""Peak memory of reading a checkpoint back (what a resumed trainer does first).

A checkpoint of one float32 tensor of --mb MiB per size is written with
`gpu_consumer.checkpoint.save`, then read back in a fresh process two ways,
each reporting how far its peak RSS (VmHWM) rose above its RSS before the read:

- `stream`: `checkpoint.read(path)` (what `load_latest` does): the digest
  checked in 1 MiB reads, the payload loaded from the open file;
- `whole`: `checkpoint.decode(path.read_bytes())`, the file's bytes in memory
  first (how `load_latest` read before session 13).

    python benchmarks/resume_memory.py [--mb 256,1024] [--dir /tmp]

Prints one JSON line: per size, each way's peak rise in MiB and its ratio to
the state's size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_READER = """
import sys
sys.path.insert(0, {root!r})
from common.procstat import peak_rss_bytes, rss_bytes
from gpu_consumer import checkpoint

before = rss_bytes()
path = {path!r}
state = checkpoint.read(path) if {way!r} == "stream" else checkpoint.decode(
    open(path, "rb").read(), path)
print(peak_rss_bytes() - before)
"""


def peak_rise(path: Path, way: str) -> int:
    """Bytes by which a fresh process's peak RSS rises while it reads `path`."""
    code = _READER.format(root=str(ROOT), path=str(path), way=way)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return int(done.stdout.strip().splitlines()[-1])


def measure(mb: int, folder: Path) -> dict:
    import torch

    from gpu_consumer import checkpoint
    state = {"step": 1, "table": torch.zeros(mb << 18, dtype=torch.float32)}
    path = checkpoint.save(folder / f"run-{mb}", state)
    del state
    out = {"state_mib": mb, "file_mib": round(path.stat().st_size / (1 << 20), 1)}
    for way in ("stream", "whole"):
        rise = peak_rise(path, way)
        out[way] = {"peak_rise_mib": round(rise / (1 << 20), 1),
                    "per_state": round(rise / (mb << 20), 2)}
    path.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", default="256,1024", help="state sizes in MiB, comma-separated")
    parser.add_argument("--dir", default=None, help="where the checkpoints are written")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        sizes = [measure(int(mb), Path(tmp)) for mb in args.mb.split(",")]
    print(json.dumps({"benchmark": "resume_memory", "sizes": sizes}))


if __name__ == "__main__":
    main()
