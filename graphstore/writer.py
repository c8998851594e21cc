"""Writing a store atomically: build in a temporary sibling directory, write
the manifest last, then rename into place.  A failed or interrupted build
leaves no directory at the destination (and the temporary one is removed on
any exception, KeyboardInterrupt included)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from graphstore.errors import StoreError
from graphstore.format import FORMAT_VERSION, MANIFEST

TMP_PREFIX = ".sagewalk-build-"


class StoreWriter:
    """Context manager owning the temporary build directory.

        with StoreWriter(out, overwrite=False) as w:
            entry = write_array(w.root, "edges/...", array)
            w.commit(manifest_without_version)
    """

    def __init__(self, out_dir: str | os.PathLike, *, overwrite: bool = False):
        self.out = Path(out_dir).resolve()
        self.overwrite = overwrite
        self.root: Path | None = None
        self._check_destination()

    def _check_destination(self) -> None:
        if self.out.is_dir() and not any(self.out.iterdir()):
            return  # an empty directory (e.g. made by the caller) is replaced silently
        if self.out.exists() and not self.overwrite:
            raise StoreError(f"{self.out}: already exists; choose another --out or pass "
                             "--overwrite to replace it")
        if self.out.exists() and not (self.out / MANIFEST).is_file() and any(self.out.iterdir()):
            raise StoreError(f"{self.out}: exists and is not a graph store; refusing to "
                             "replace it (remove it yourself or choose another --out)")

    def __enter__(self) -> "StoreWriter":
        self.out.parent.mkdir(parents=True, exist_ok=True)
        # A sibling of the destination: same filesystem, so the final rename is atomic.
        self.root = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=self.out.parent))
        return self

    def scratch(self) -> Path:
        """A directory for scratch files, removed with the build directory."""
        path = self.root / "_scratch"
        path.mkdir(exist_ok=True)
        return path

    def commit(self, manifest: dict[str, Any]) -> Path:
        shutil.rmtree(self.root / "_scratch", ignore_errors=True)
        manifest = {"format_version": FORMAT_VERSION, **manifest}
        tmp = self.root / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        os.replace(tmp, self.root / MANIFEST)
        if self.out.is_dir() and not any(self.out.iterdir()):
            self.out.rmdir()
        if self.out.exists():
            trash = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + "old-", dir=self.out.parent))
            os.rename(self.out, trash / "store")
            os.rename(self.root, self.out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(self.root, self.out)
        self.root = None
        return self.out

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
