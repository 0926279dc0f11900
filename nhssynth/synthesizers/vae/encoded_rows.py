"""The encoded training table on disk, for DP-SGD over a table larger than memory.

An out-of-core fit encodes the table one batch of rows at a time into a float32 file in a
private temporary directory (mode 0700: it is the real data, encoded) and trains from it:
every step reads its Poisson batch by row index (the batch is drawn over the whole table, as
the accountant assumes), so memory holds one batch, not the table.  The rows are read through
a read-only memory map whose pages are released every few thousand rows read, so the
resident memory stays small while the operating system's page cache keeps the file fast.

:class:`EncodedRows` has what :func:`~nhssynth.synthesizers.vae.training.train_vae` uses of its
matrix: ``shape``, ``device`` and indexing by a tensor of row indices.
"""
from __future__ import annotations

import mmap
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

__all__ = ["EncodedRows"]

_RELEASE_BYTES = 64 * 2**20  # bytes read between two releases of the mapped pages


class EncodedRows:
    """An ``(n_rows, n_features)`` float32 matrix in a temporary file, indexed by row.

    Build it with :meth:`write`; ``rows[idx]`` (``idx`` a 1-D integer tensor) returns those
    rows as a tensor on ``device``; :meth:`close` deletes the file (also on garbage collection
    of the object, and it is safe to call twice).
    """

    def __init__(self, path: Path, n_rows: int, n_features: int, device: str | torch.device):
        self._dir = path.parent
        self.shape = (int(n_rows), int(n_features))
        self.device = torch.device(device)
        self._file = open(path, "rb")
        size = n_rows * n_features * 4
        self._map = mmap.mmap(self._file.fileno(), size, access=mmap.ACCESS_READ) if size else None
        self._rows = (np.frombuffer(self._map, dtype=np.float32).reshape(self.shape)
                      if self._map is not None else np.zeros(self.shape, dtype=np.float32))
        self._read = 0

    @classmethod
    def write(cls, batches, n_features: int, device: str | torch.device = "cpu") -> "EncodedRows":
        """Write the encoded ``batches`` (2-D float arrays of ``n_features`` columns, in row
        order) to a new temporary file and map it."""
        folder = Path(tempfile.mkdtemp(prefix="nhssynth-encoded-"))  # mode 0700
        path = folder / "rows.f32"
        n_rows = 0
        try:
            with open(path, "wb") as f:
                for Z in batches:
                    Z = np.ascontiguousarray(Z, dtype=np.float32)
                    if Z.ndim != 2 or Z.shape[1] != n_features:
                        raise ValueError(f"an encoded batch has shape {Z.shape}, expected "
                                         f"(rows, {n_features}).")
                    f.write(Z.tobytes())
                    n_rows += Z.shape[0]
            return cls(path, n_rows, n_features, device)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        index = idx.cpu().numpy() if isinstance(idx, torch.Tensor) else np.asarray(idx)
        rows = self._rows[index]  # a copy: fancy indexing never returns a view of the map
        self._read += rows.nbytes
        if self._read >= _RELEASE_BYTES and self._map is not None \
                and hasattr(self._map, "madvise"):
            # drop the pages this process has mapped (they stay in the page cache): without
            # it, an epoch's random reads would make the whole file resident in this process
            self._map.madvise(mmap.MADV_DONTNEED)
            self._read = 0
        return torch.from_numpy(rows).to(self.device)

    def close(self) -> None:
        """Unmap and delete the file (idempotent)."""
        if getattr(self, "_file", None) is None:
            return
        self._rows = None
        if self._map is not None:
            self._map.close()
        self._file.close()
        self._file = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: best effort
            pass

    @property
    def path(self) -> str | None:
        """The file (None once closed)."""
        return None if self._file is None else os.fspath(self._dir / "rows.f32")
