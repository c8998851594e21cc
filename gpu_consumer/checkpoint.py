"""Crash-safe checkpoints: write whole or not at all, fall back when damaged.

A checkpoint file is `MAGIC + sha256(payload) + payload`, where the payload
is `torch.save` of tensors and plain data (dicts, lists, numbers, strings),
loaded back with `weights_only=True`: no pickled objects, so a checkpoint
cannot run code.  Writes go to a temp file in the same directory, are
fsynced, renamed into place and the directory fsynced, so a crash or a full
disk mid-write leaves the previous checkpoint as the newest intact one.

    save(run_dir, state) -> Path          # keeps the newest `keep`
    load_latest(run_dir) -> dict | None   # newest intact one, with a warning per damaged one
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from pathlib import Path

import torch

log = logging.getLogger(__name__)

MAGIC = b"SAGEWALK-CKPT-1\n"
_NAME = re.compile(r"^checkpoint-(\d{9})\.pt$")
_TEMP = re.compile(r"^\.checkpoint-\d{9}\.pt\.tmp-(\d+)$")  # write_atomically's, by pid
_CHUNK = 1 << 20


class CorruptCheckpoint(Exception):
    """A checkpoint file that is truncated, altered or not a checkpoint."""


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def _write_chunk(fd: int, data: memoryview) -> int:
    """One write(2); a separate function so tests can inject ENOSPC."""
    return os.write(fd, data)


def write_atomically(path: Path, data: bytes) -> None:
    """Temp file, write, fsync, rename, fsync the directory.  On any error the
    temp file is removed and the error propagates; `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[_write_chunk(fd, view[:_CHUNK]):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def encode(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    return MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


def decode(data: bytes, where: str = "<bytes>") -> dict:
    if not data.startswith(MAGIC):
        raise CorruptCheckpoint(f"{where}: not a sagewalk checkpoint (bad magic)")
    digest, payload = data[len(MAGIC):len(MAGIC) + 64], data[len(MAGIC) + 65:]
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise CorruptCheckpoint(f"{where}: checksum mismatch (truncated or altered, "
                                f"{len(data)} bytes)")
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for bad payloads
        raise CorruptCheckpoint(f"{where}: payload does not load: {err}") from err


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Checkpoint files, oldest first (by the step in their name)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save(run_dir: str | os.PathLike, state: dict, *, step: int | None = None,
         keep: int = 3) -> Path:
    """Write `state` as checkpoint-<step>.pt and delete all but the newest `keep`."""
    step = int(state.get("step", 0) if step is None else step)
    path = checkpoint_dir(run_dir) / f"checkpoint-{step:09d}.pt"
    _remove_orphaned_temps(path.parent)
    write_atomically(path, encode(state))
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def _remove_orphaned_temps(folder: Path) -> None:
    """Delete temp files of writers killed mid-write (kill -9 skips the
    cleanup in write_atomically): never listed or loaded, they only fill the
    disk, a checkpoint's size per crash.  A live writer's temp file is kept."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        match = _TEMP.match(path.name)
        if match and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    return True


def load_latest(run_dir: str | os.PathLike) -> dict | None:
    """The newest checkpoint that reads back intact, or None when there is none.
    Each damaged newer one is skipped with a warning naming the file."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            state = decode(path.read_bytes(), str(path))
        except (CorruptCheckpoint, OSError) as err:
            log.warning("skipping damaged checkpoint, falling back to an older one: %s", err)
            continue
        state["_path"] = str(path)
        return state
    return None
