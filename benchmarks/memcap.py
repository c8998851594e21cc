"""A memory cap for a benchmark's own processes: a child memory cgroup.

cgroup v2 (memory.max in a child of this process's own group, where the
memory controller is enabled there) is tried first, then cgroup v1 (a child
of this process's group in the memory hierarchy, memory.limit_in_bytes).
Both charge the page cache a group's processes read into it, so a store
bigger than the cap cannot stay cached: its pages are evicted and read again
from disk.  Where neither is writable (no root, no delegation, a container
without the controller) `check_available` raises CapUnavailable saying what
was tried; systemd-run --scope -p MemoryMax= needs a systemd that manages
this machine's cgroups and is not used.

    with MemoryCap(3 << 30) as cap:
        subprocess.Popen(argv, preexec_fn=cap.join)   # the child and its children
        ...
        cap.report()   # limit, peak usage, OOM kills
"""

from __future__ import annotations

import os
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


class CapUnavailable(RuntimeError):
    """This machine does not let us create a capped memory cgroup."""


def _own_groups(proc_cgroup: str) -> tuple[str | None, str | None]:
    """(v2 path, v1 memory path) of this process, from /proc/self/cgroup text."""
    v2 = v1 = None
    for line in proc_cgroup.splitlines():
        hid, controllers, path = line.split(":", 2)
        if hid == "0" and controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            v1 = path
    return v2, v1


def _v2_mount() -> Path | None:
    for candidate in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        if (candidate / "cgroup.controllers").exists():
            return candidate
    return None


def candidates(root: Path = CGROUP_ROOT, proc_cgroup: str | None = None) -> list[tuple]:
    """[(version, parent directory)] in the order to try, with a reason per
    skipped kind as (version, None, why)."""
    text = proc_cgroup if proc_cgroup is not None else Path("/proc/self/cgroup").read_text()
    v2, v1 = _own_groups(text)
    out = []
    mount = _v2_mount() if root == CGROUP_ROOT else (root if (root / "cgroup.controllers")
                                                      .exists() else None)
    if v2 is not None and mount is not None:
        parent = mount / v2.lstrip("/")
        enabled = (parent / "cgroup.subtree_control")
        have = enabled.read_text().split() if enabled.exists() else []
        if "memory" in have:
            out.append(("v2", parent, None))
        else:
            out.append(("v2", None, f"cgroup v2 at {mount}: the memory controller is not "
                        f"enabled for children of {parent} (cgroup.subtree_control: "
                        f"{' '.join(have) or 'empty'})"))
    else:
        out.append(("v2", None, "no cgroup v2 hierarchy mounted"))
    v1_root = root / "memory"
    if v1 is not None and (v1_root / "memory.limit_in_bytes").exists():
        out.append(("v1", v1_root / v1.lstrip("/"), None))
    else:
        out.append(("v1", None, "no cgroup v1 memory hierarchy"))
    return out


class MemoryCap:
    def __init__(self, limit_bytes: int):
        if limit_bytes <= 0:
            raise ValueError(f"memory cap: must be > 0 bytes, got {limit_bytes}")
        self.limit = int(limit_bytes)
        self.version: str | None = None
        self.path: Path | None = None

    @staticmethod
    def check_available() -> None:
        """Raise CapUnavailable unless a child group can be made and limited here."""
        cap = MemoryCap(1 << 30)
        cap.__enter__()
        cap.__exit__(None, None, None)

    def __enter__(self) -> "MemoryCap":
        why = []
        for version, parent, reason in candidates():
            if parent is None:
                why.append(reason)
                continue
            path = parent / f"sagewalk-cap-{os.getpid()}"
            try:
                path.mkdir(exist_ok=True)
                if version == "v2":
                    (path / "memory.max").write_text(str(self.limit))
                    if (path / "memory.swap.max").exists():
                        (path / "memory.swap.max").write_text("0")
                else:
                    (path / "memory.limit_in_bytes").write_text(str(self.limit))
                    if (path / "memory.memsw.limit_in_bytes").exists():
                        (path / "memory.memsw.limit_in_bytes").write_text(str(self.limit))
            except OSError as err:
                why.append(f"cgroup {version}: cannot create or limit {path}: {err}")
                _rmdir(path)
                continue
            self.version, self.path = version, path
            return self
        raise CapUnavailable("; ".join(why) + ". Run as root on a machine with a writable "
                             "memory cgroup (v2 with the memory controller delegated, or v1)")

    def join(self) -> None:
        """Move the calling process into the group (a Popen preexec_fn: runs in
        the child before exec, so the child and all its children are capped)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def report(self) -> dict:
        """The limit, peak usage (page cache included) and OOM kills so far."""
        p = self.path
        if self.version == "v2":
            peak = _read_int(p / "memory.peak")
            events = dict(line.split() for line in (p / "memory.events").read_text()
                          .splitlines())
            ooms = int(events.get("oom_kill", 0))
        else:
            peak = _read_int(p / "memory.max_usage_in_bytes")
            ooms = int(dict(line.split() for line in (p / "memory.oom_control").read_text()
                            .splitlines()).get("oom_kill", 0))
        return {"cgroup": self.version, "limit_bytes": self.limit, "peak_usage_bytes": peak,
                "oom_kills": ooms}

    def __exit__(self, *exc) -> None:
        if self.path is not None:
            _rmdir(self.path)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _rmdir(path: Path) -> None:
    """Remove an empty group (its processes gone); retried briefly while the
    last exit is accounted."""
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)


def evict(directory: Path) -> int:
    """Drop every file under `directory` from the page cache (clean pages:
    posix_fadvise DONTNEED after fsync).  Returns the bytes advised."""
    total = 0
    for dirpath, _dirs, files in os.walk(directory):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
                size = os.fstat(fd).st_size
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                total += size
            finally:
                os.close(fd)
    return total
