"""Prometheus file-based service discovery for producer endpoints.

Producers come and go (restarts pick new ports when `producer_base_port` is 0),
so the sampler supervisor rewrites one JSON file whenever its set of live
producers changes, and Prometheus (`file_sd_configs`) and `sagewalk dashboard`
read it.  The format is Prometheus's:

    [{"targets": ["127.0.0.1:9760", "127.0.0.1:9761"], "labels": {...}}]

Writes go through a temp file renamed over the old one, so a reader never sees
half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

from common.errors import SagewalkError


class DiscoveryError(SagewalkError):
    """A service-discovery file could not be written or read."""


def write_sd_file(path: str | Path, targets: Iterable[str | tuple[str, int]], *,
                  labels: Mapping[str, str] | None = None) -> None:
    """Atomically replace `path` with one target group listing `targets`
    ("host:port" strings or (host, port) pairs); `labels` are attached to every
    target.  An empty `targets` writes `[]`: no producers, no scrapes."""
    path = Path(path)
    addresses = sorted({_address(t) for t in targets})
    groups = [{"targets": addresses, "labels": dict(labels or {})}] if addresses else []
    text = json.dumps(groups, indent=2) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise DiscoveryError(f"{path}: cannot write the service-discovery file: {err}; "
                             "check monitoring.sd_file points to a writable place") from err


def read_sd_file(path: str | Path) -> list[tuple[str, dict[str, str]]]:
    """(host:port, labels) for every target in `path`; [] when it does not exist yet
    (the sampler has not started)."""
    path = Path(path)
    try:
        groups = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as err:
        raise DiscoveryError(f"{path}: not a Prometheus file-SD JSON file: {err}") from err
    if not isinstance(groups, list):
        raise DiscoveryError(f"{path}: expected a JSON list of target groups, "
                             f"got {type(groups).__name__}")
    found = []
    for group in groups:
        labels = {str(k): str(v) for k, v in (group.get("labels") or {}).items()}
        found.extend((str(target), labels) for target in group.get("targets", []))
    return found


def _address(target: str | tuple[str, int]) -> str:
    if isinstance(target, tuple):
        host, port = target
        return f"[{host}]:{int(port)}" if ":" in host else f"{host}:{int(port)}"
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise DiscoveryError(f"service-discovery target {target!r}: expected host:port, "
                             "e.g. 127.0.0.1:9760")
    return target
