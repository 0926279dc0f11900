"""The encoded training table on disk, for DP-SGD over a table larger than memory.

An out-of-core fit encodes the table one batch of rows at a time into a float32 file in a
private temporary directory (mode 0700: it is the real data, encoded) and trains from it:
every step reads its Poisson batch by row index (the batch is drawn over the whole table, as
the accountant assumes), so memory holds one batch, not the table.  The rows are read with
positioned reads (``os.preadv``, one per run of consecutive rows) straight into the batch:
the operating system's page cache keeps the file fast, and nothing of it is mapped into the
process.  (A memory map was measured first: with the kernel's fault-around, a step's 1,024
random rows mapped up to the whole 4 GB file into the process's resident memory.)

:class:`EncodedRows` has what :func:`~nhssynth.synthesizers.vae.training.train_vae` uses of its
matrix: ``shape``, ``device`` and indexing by a tensor of row indices.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

__all__ = ["EncodedRows"]

_PREADV = getattr(os, "preadv", None)  # POSIX; looked up once, not per row read


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
        self._file = open(path, "rb", buffering=0)
        self._row_bytes = 4 * int(n_features)

    @classmethod
    def write(cls, batches, n_features: int, device: str | torch.device = "cpu") -> "EncodedRows":
        """Write the encoded ``batches`` (2-D float arrays of ``n_features`` columns, in row
        order) to a new temporary file, opened for reading."""
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
        if self._file is None:
            raise ValueError("the encoded rows are closed.")
        index = idx.cpu().numpy() if isinstance(idx, torch.Tensor) else np.asarray(idx)
        index = index.astype(np.int64, copy=False).ravel()
        if len(index) and (index.min() < 0 or index.max() >= self.shape[0]):
            raise IndexError(f"row index out of range for {self.shape[0]} encoded rows.")
        out = np.empty((len(index), self.shape[1]), dtype=np.float32)
        if len(index) and self._row_bytes:
            buffer = memoryview(out).cast("B")
            # one read per run of consecutive rows (a Poisson batch is sorted)
            starts = np.flatnonzero(np.diff(index, prepend=index[0] - 2) != 1)
            ends = np.append(starts[1:], len(index))
            for a, b in zip(starts.tolist(), ends.tolist()):
                self._read_into(buffer[a * self._row_bytes:b * self._row_bytes],
                                int(index[a]) * self._row_bytes)
        return torch.from_numpy(out).to(self.device)

    def _read_into(self, buffer: memoryview, offset: int) -> None:
        fd = self._file.fileno()
        while len(buffer):
            if _PREADV is not None:
                got = _PREADV(fd, [buffer], offset)
            else:  # Windows
                self._file.seek(offset)
                got = self._file.readinto(buffer)
            if not got:
                raise OSError("the encoded rows file ended early.")
            buffer, offset = buffer[got:], offset + got

    def close(self) -> None:
        """Unmap and delete the file (idempotent)."""
        if getattr(self, "_file", None) is None:
            return
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
