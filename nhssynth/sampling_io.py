"""Sampling more rows than fit in memory: chunks written straight to a Parquet file.

``sample_to_parquet(generator, 100_000_000, "out.parquet")`` calls ``generator.sample`` once per
chunk and appends each chunk to the file as one Parquet row group, so memory holds at most two
chunks whatever the number of rows: chunk i is written on a second thread while chunk i + 1 is
sampled (docs/scale.md has the measurements).  Needs ``pyarrow``
(``pip install 'nhssynth[parquet]'``).
"""
from __future__ import annotations

import numbers
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._rng import seed_sequence
from .base import fresh_ids
from .table_source import import_pyarrow

__all__ = ["sample_to_parquet"]

DEFAULT_CHUNK_SIZE = 250_000


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r} "
                        f"({type(value).__name__}).")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value}.")
    return int(value)


def _chunk_rng(base: np.random.SeedSequence, i: int) -> np.random.Generator:
    """Chunk ``i``'s Generator: the child of ``base`` with spawn key ``i`` (what
    ``base.spawn`` would give as its ``i``-th child, without the counter), so it depends on
    ``random_state`` and ``i`` only."""
    return np.random.default_rng(np.random.SeedSequence(base.entropy,
                                                        spawn_key=(*base.spawn_key, i)))


def _check_path(path: Any, overwrite: bool) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}.")
    path = Path(path).expanduser()
    if str(path) == "" or path.name == "":
        raise ValueError(f"path {str(path)!r} names no file.")
    parent = path.parent
    if not parent.exists():
        raise FileNotFoundError(f"the directory of {str(path)!r} does not exist: create "
                                f"{str(parent)!r} first.")
    if not parent.is_dir():
        raise NotADirectoryError(f"{str(parent)!r} (the parent of {str(path)!r}) is not a "
                                 f"directory.")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a directory; give a file name such as "
                                f"{str(path / 'synthetic.parquet')!r}.")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} already exists; pass overwrite=True to replace it.")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"cannot write to the directory {str(parent)!r}.")
    return path


def sample_to_parquet(generator: Any, n_samples: int, path: str | os.PathLike, *,
                      chunk_size: int = DEFAULT_CHUNK_SIZE, random_state: Any = None,
                      overwrite: bool = False, compression: str | None = "snappy",
                      conditions: Any = None) -> Path:
    """Sample ``n_samples`` rows from a fitted generator into a Parquet file, chunk by chunk.

    Each chunk is one call ``generator.sample(m, random_state=rng_i)`` (``m = chunk_size``,
    the last chunk smaller) written as one row group with
    :class:`pyarrow.parquet.ParquetWriter` on a second thread while the next chunk is sampled,
    so at most two chunks are in memory at a time (the rows do not depend on it).  The file is
    written under a temporary name in the same directory and renamed at the end, so a failure
    leaves no partial file at ``path``.

    Parameters
    ----------
    generator : estimator
        A fitted nhssynth generator (:class:`~nhssynth.AIMSynthesizer`,
        :class:`~nhssynth.MarginalSynthesizer`, :class:`~nhssynth.DPVAESynthesizer`), a fitted
        :class:`~nhssynth.SynthesisPipeline`, or anything with
        ``sample(n, random_state=...)`` returning a DataFrame.
    n_samples : int
        Number of rows to write, > 0.
    path : str or os.PathLike
        The Parquet file.  Its directory must exist.
    chunk_size : int, default 250_000
        Rows per ``sample`` call and per row group.  Peak memory grows with it, not with
        ``n_samples``.
    random_state : int, RandomState, Generator or None, default None
        Seed of the whole draw.  Chunk ``i`` is sampled with its own
        :class:`numpy.random.Generator`, seeded by the ``i``-th child of
        ``SeedSequence(random_state)``.  The same ``random_state``, ``chunk_size`` and
        ``n_samples`` give the same file.  The rows *do* depend on ``chunk_size`` (it decides
        which rows share a chunk seed); for a fixed ``chunk_size`` every full chunk is the same
        whatever ``n_samples``, so 2M rows start with the 1M rows of the same seed when
        ``chunk_size`` divides 1M.  ``None`` draws fresh entropy.
    overwrite : bool, default False
        Replace ``path`` if it exists (otherwise :class:`FileExistsError`).
    compression : str or None, default "snappy"
        Parquet compression codec (``pyarrow.parquet.ParquetWriter``'s ``compression``).
    conditions : dict, optional
        Passed to every ``generator.sample`` call (``sample(m, random_state=..., conditions=...)``):
        every row written meets them.  ``None`` (the default) does not pass the argument, so
        any generator with ``sample(n, random_state=...)`` works.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError, ValueError
        ``n_samples`` or ``chunk_size`` is not a positive integer; ``generator`` has no
        ``sample``; a chunk's columns or dtypes differ from the first chunk's.
    FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError
        The directory of ``path`` does not exist, is not a directory or is not writable;
        ``path`` is a directory.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    ImportError
        pyarrow is not installed.

    Notes
    -----
    Sampling is post-processing: the file carries exactly the guarantee of the fitted
    generator, however many rows or chunks it has (the (ε, δ) was spent in ``fit``; see
    docs/scale.md).  Column dtypes follow the first chunk: categories (with the full list of
    categories, in order), nullable integers and datetimes read back as written with
    ``pandas.read_parquet``.

    Examples
    --------
    >>> from nhssynth import AIMSynthesizer, sample_to_parquet       # doctest: +SKIP
    >>> synth = AIMSynthesizer(epsilon=1.0, random_state=0).fit(df)  # doctest: +SKIP
    >>> sample_to_parquet(synth, 10_000_000, "synthetic.parquet",    # doctest: +SKIP
    ...                   random_state=1)
    """
    n_samples = _positive_int(n_samples, "n_samples")
    chunk_size = _positive_int(chunk_size, "chunk_size")
    if not callable(getattr(generator, "sample", None)):
        raise TypeError(f"generator must have a sample(n, random_state=...) method; got "
                        f"{type(generator).__name__}.")
    path = _check_path(path, overwrite)
    pa, pq = import_pyarrow("sample_to_parquet")

    extra = {} if conditions is None else {"conditions": conditions}
    n_chunks = -(-n_samples // chunk_size)
    base = seed_sequence(random_state)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    state: dict[str, Any] = {"writer": None}

    def write(chunk: pd.DataFrame, i: int) -> None:
        # the first chunk fixes the schema; later ones are converted to it
        if state["writer"] is None:
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            state["schema"] = table.schema
            state["writer"] = pq.ParquetWriter(tmp, table.schema, compression=compression)
        else:
            try:
                table = pa.Table.from_pandas(chunk, schema=state["schema"], preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
                raise ValueError(f"chunk {i} does not fit the schema of the first chunk "
                                 f"(dtypes {chunk.dtypes.astype(str).to_dict()}): {exc}"
                                 ) from exc
        state["writer"].write_table(table)

    columns = None
    try:
        # chunk i is written (Arrow conversion and Parquet encoding, which release the GIL) on
        # a second thread while chunk i + 1 is sampled: at most two chunks are in memory
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nhssynth-parquet") as pool:
            pending = None
            for i in range(n_chunks):
                m = min(chunk_size, n_samples - i * chunk_size)
                chunk = generator.sample(m, random_state=_chunk_rng(base, i), **extra)
                if not isinstance(chunk, pd.DataFrame):
                    raise TypeError(f"{type(generator).__name__}.sample returned "
                                    f"{type(chunk).__name__}; sample_to_parquet writes "
                                    f"DataFrames.")
                if len(chunk) != m:
                    raise ValueError(f"{type(generator).__name__}.sample({m}) returned "
                                     f"{len(chunk)} rows (chunk {i}).")
                _number_ids(chunk, generator, i * chunk_size + 1)
                if columns is None:
                    columns = list(chunk.columns)
                elif list(chunk.columns) != columns:
                    raise ValueError(f"chunk {i} has columns {list(chunk.columns)}, the first "
                                     f"chunk {columns}.")
                if pending is not None:
                    pending.result()  # re-raises the writer's error, if any
                pending = pool.submit(write, chunk, i)
                del chunk
            if pending is not None:
                pending.result()
        state["writer"].close()
        state["writer"] = None
        if path.exists() and not overwrite:  # created by someone else meanwhile
            raise FileExistsError(f"{str(path)!r} already exists; pass overwrite=True to replace "
                                  f"it.")
        os.replace(tmp, path)
    finally:
        if state["writer"] is not None:
            state["writer"].close()
        if tmp.exists():
            tmp.unlink()
    return path


def _number_ids(chunk: pd.DataFrame, generator: Any, start: int) -> None:
    """Identifier columns (``kind: id`` in the generator's metadata) numbered on from the rows
    already written, so that ids stay unique across chunks (each ``sample`` call starts at 1)."""
    metadata = getattr(generator, "metadata_", None)
    for col in (metadata or []):
        if getattr(col, "kind", None) == "id" and col.name in chunk.columns and start > 1:
            chunk[col.name] = fresh_ids(len(chunk), chunk[col.name].dtype, start)
