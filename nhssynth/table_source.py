"""Tables larger than memory: a table on disk read one column, or one batch of rows, at a time.

A generator that can fit out of core (:class:`~nhssynth.AIMSynthesizer`,
:class:`~nhssynth.DPVAESynthesizer`; and :class:`~nhssynth.TableEncoder`) accepts, instead of
a DataFrame, a Parquet file, a directory of Parquet files, a CSV file, an iterable of
DataFrame chunks or a :class:`TableSource`.  Its fit then never holds the whole table:

* metadata is inferred, and each DP statistic of the domain release is computed, from **one
  column at a time** (a 10M-row numeric column is 80 MB; Parquet reads a column without the
  others);
* the marginals the model is fitted to are counted from **one batch of rows at a time**
  (encoded to small integer codes, counted, dropped) in a single pass; the DP-VAE writes its
  encoding a batch at a time to a private file and reads each DP-SGD batch from it.

CSV files and iterables of chunks are first written, chunk by chunk, to Parquet files in a
private temporary directory (removed when the fit ends): CSV cannot be read by column, and an
iterator can be read only once.  That copy holds the real data: it lives on the same machine,
inside the same trust boundary as the original.

Needs ``pyarrow`` (``pip install 'nhssynth[parquet]'``).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from .exceptions import MetadataError
from .metadata import _check_sep, _read_csv, sniff_delimiter

__all__ = ["TableSource", "is_table_source_input"]

DEFAULT_BATCH_ROWS = 200_000


def import_pyarrow(purpose: str = "fitting from a file or from chunks"):
    """``(pyarrow, pyarrow.parquet)``, or an ImportError saying what needs them and how to
    install them (pyarrow is an optional dependency: the ``parquet`` extra)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is in the test extra
        raise ImportError(f"{purpose} needs pyarrow: pip install 'nhssynth[parquet]' "
                          "(or pip install pyarrow).") from exc
    return pa, pq


def is_table_source_input(X: Any) -> bool:
    """Whether ``X`` is a table on disk or a stream of chunks (not an in-memory table)."""
    if isinstance(X, (TableSource, str, os.PathLike)):
        return True
    if isinstance(X, (pd.DataFrame, pd.Series, np.ndarray, dict)):
        return False
    if isinstance(X, Iterator):
        return True
    if isinstance(X, (list, tuple)) and X and all(isinstance(c, pd.DataFrame) for c in X):
        return True
    return False


class TableSource:
    """A table stored as one or more Parquet files, read by column or by batch of rows.

    Build one with :meth:`open` (from a path or chunks).  It behaves like a read-only
    DataFrame for the two things an out-of-core fit needs: ``source[name]`` (one whole column
    as a Series) and :meth:`iter_frames` (the rows in batches), plus ``len(source)`` and
    ``source.columns``.

    Parameters
    ----------
    files : sequence of path
        Parquet files holding consecutive parts of the table (same columns, in this order).
    batch_rows : int, default 200_000
        Rows per batch of :meth:`iter_frames`.
    temporary_dir : path, optional
        A directory this source owns (its spooled copy): :meth:`close` deletes it.
    """

    def __init__(self, files: Sequence[str | os.PathLike], *, batch_rows: int = DEFAULT_BATCH_ROWS,
                 temporary_dir: str | os.PathLike | None = None) -> None:
        _, pq = import_pyarrow()
        self.files = [Path(f) for f in files]
        self.batch_rows = int(batch_rows)
        self.temporary_dir = temporary_dir
        if not self.files:
            raise MetadataError("the table has no Parquet file: nothing to fit.")
        self._meta = [pq.ParquetFile(f).metadata for f in self.files]
        self.columns = list(pq.ParquetFile(self.files[0]).schema_arrow.names)
        self._keep: np.ndarray | None = None

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def open(cls, X: Any, *, sep: str | None = None,
             batch_rows: int = DEFAULT_BATCH_ROWS) -> "TableSource":
        """A source for a Parquet/CSV path, an iterable of DataFrames, or a TableSource.

        A Parquet file or directory is read in place; a CSV file or an iterable of
        DataFrames is spooled to a private temporary directory; a TableSource is returned
        as it is.

        Parameters
        ----------
        X : str, path, iterable of DataFrame or TableSource
        sep : str, optional
            CSV delimiter (default: sniffed).
        batch_rows : int, default 200_000
            Rows per batch of :meth:`iter_frames`.

        Returns
        -------
        TableSource

        Raises
        ------
        FileNotFoundError
            The path does not exist.
        MetadataError
            Parquet files whose schemas differ, chunks whose columns differ, an empty table,
            a file type that cannot be read.
        """
        if isinstance(X, TableSource):
            return X
        if isinstance(X, (str, os.PathLike)):
            return cls._from_path(Path(X).expanduser(), sep, batch_rows)
        if isinstance(X, Iterable):
            return cls._spool(iter(X), batch_rows, what="chunk")
        raise MetadataError(f"cannot read a table from {type(X).__name__}: pass a DataFrame, a "
                            "Parquet or CSV path, or an iterable of DataFrame chunks.")

    @classmethod
    def _from_path(cls, path: Path, sep: str | None, batch_rows: int) -> "TableSource":
        if not path.exists():
            raise FileNotFoundError(f"no such file or directory: {str(path)!r}. Pass the path of "
                                    "a Parquet file, a directory of Parquet files or a CSV file.")
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
            if not files:
                raise MetadataError(f"directory {str(path)!r} holds no *.parquet file.")
            _check_same_schema(files)
            return cls(files, batch_rows=batch_rows)
        suffix = "".join(path.suffixes[-2:]).lower()
        if path.suffix.lower() in (".parquet", ".pq"):
            return cls([path], batch_rows=batch_rows)
        if path.suffix.lower() in (".csv", ".tsv", ".txt") or suffix in (".csv.gz", ".tsv.gz"):
            _read_csv(path, sep, None, {"nrows": 1000})  # the in-memory read's checks: a
            # file that is empty, unparsable, or read as one column with another delimiter
            sep = _check_sep(sep) or sniff_delimiter(path)
            return cls._spool(iter(pd.read_csv(path, sep=sep, chunksize=batch_rows)),
                              batch_rows, what="CSV block")
        raise MetadataError(f"cannot read {str(path)!r}: use a .parquet or .csv file (or a "
                            "directory of .parquet files).")

    @classmethod
    def _spool(cls, chunks: Iterator[Any], batch_rows: int, what: str) -> "TableSource":
        """Write each chunk to its own Parquet file in a private temporary directory."""
        pa, pq = import_pyarrow()
        tmp = tempfile.mkdtemp(prefix="nhssynth-table-")  # mode 0700: the real data
        files: list[Path] = []
        columns: list[str] | None = None
        try:
            for i, chunk in enumerate(chunks):
                if not isinstance(chunk, pd.DataFrame):
                    raise MetadataError(f"{what} {i} is a {type(chunk).__name__}, not a DataFrame: "
                                        "pass an iterable of pandas DataFrames.")
                if columns is None:
                    columns = list(chunk.columns)
                elif list(chunk.columns) != columns:
                    missing = [c for c in columns if c not in chunk.columns]
                    extra = [c for c in chunk.columns if c not in columns]
                    detail = (f"missing {missing}, unexpected {extra}" if missing or extra
                              else "the same columns in another order")
                    raise MetadataError(f"{what} {i} has different columns from {what} 0 "
                                        f"({detail}); every chunk must have the same columns.")
                if len(chunk) == 0:
                    continue
                bad = [c for c in chunk.columns if not isinstance(c, str)]
                if bad:
                    raise MetadataError(f"column names must be strings; found {bad[:5]!r}.")
                f = Path(tmp) / f"part-{i:06d}.parquet"
                try:
                    table = pa.Table.from_pandas(chunk, preserve_index=False)
                except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                    raise MetadataError(f"{what} {i} cannot be stored column by column: {exc}. "
                                        "Give each column one type of value.") from None
                pq.write_table(table, f)
                files.append(f)
            if not files:
                raise MetadataError(f"the {what}s hold no rows: nothing to fit.")
            return cls(files, batch_rows=batch_rows, temporary_dir=tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    # -- reading -------------------------------------------------------------------------------
    def __len__(self) -> int:
        if self._keep is not None:
            return int(self._keep.sum())
        return int(sum(m.num_rows for m in self._meta))

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __getitem__(self, name: str) -> pd.Series:
        """The whole column ``name`` (every file, the kept rows), as a Series."""
        if name not in self.columns:
            raise KeyError(name)
        _, pq = import_pyarrow()
        parts = [pq.read_table(f, columns=[name]).to_pandas()[name] for f in self.files]
        if len(parts) == 1:
            s = parts[0]
        elif all(isinstance(p.dtype, pd.CategoricalDtype) for p in parts):
            s = pd.Series(union_categoricals([p.array for p in parts]), name=name)
        else:
            s = pd.concat(parts, ignore_index=True)
        s = s.reset_index(drop=True)
        if self._keep is not None:
            s = s[self._keep].reset_index(drop=True)
        return s

    def iter_frames(self, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        """The table's kept rows in order, ``batch_rows`` at a time.

        Parameters
        ----------
        columns : sequence of str, optional
            Columns to read (default: all).

        Yields
        ------
        DataFrame
            At most ``batch_rows`` rows.
        """
        _, pq = import_pyarrow()
        columns = list(columns) if columns is not None else self.columns
        start = 0
        for f in self.files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=self.batch_rows, columns=columns):
                frame = batch.to_pandas()
                stop = start + len(frame)
                if self._keep is not None:
                    frame = frame[self._keep[start:stop]].reset_index(drop=True)
                start = stop
                if len(frame):
                    yield frame

    def keep_rows(self, keep: np.ndarray | None) -> None:
        """From now on, read only the rows where ``keep`` is true.

        Parameters
        ----------
        keep : ndarray of bool or None
            One entry per stored row; ``None`` reads every row again.
        """
        if keep is None:
            self._keep = None
            return
        keep = np.asarray(keep, dtype=bool)
        total = int(sum(m.num_rows for m in self._meta))
        if keep.shape != (total,):
            raise ValueError(f"keep has {keep.shape} entries; the table has {total} rows.")
        self._keep = keep

    def close(self) -> None:
        """Delete the temporary copy, if this source made one."""
        if self.temporary_dir is not None:
            shutil.rmtree(self.temporary_dir, ignore_errors=True)
            self.temporary_dir = None

    def __enter__(self) -> "TableSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"TableSource({len(self.files)} Parquet file(s), {len(self)} rows x "
                f"{len(self.columns)} columns)")


def _check_same_schema(files: Sequence[Path]) -> None:
    _, pq = import_pyarrow()
    first = pq.ParquetFile(files[0]).schema_arrow.remove_metadata()
    for f in files[1:]:
        schema = pq.ParquetFile(f).schema_arrow.remove_metadata()
        if schema.equals(first):
            continue
        a = {fld.name: fld.type for fld in first}
        b = {fld.name: fld.type for fld in schema}
        missing = [n for n in a if n not in b]
        extra = [n for n in b if n not in a]
        typed = [f"{n!r}: {a[n]} in {files[0].name}, {b[n]} in {f.name}"
                 for n in a if n in b and a[n] != b[n]]
        order = [] if missing or extra or typed else ["the same columns in another order"]
        detail = "; ".join(filter(None, [f"missing {missing}" if missing else "",
                                         f"unexpected {extra}" if extra else "", *typed, *order]))
        raise MetadataError(f"Parquet file {str(f)!r} has a different schema from "
                            f"{str(files[0])!r} ({detail}). Every file of a table must have the "
                            "same columns and types: rewrite the odd file, or pass the files "
                            "that belong together.")
