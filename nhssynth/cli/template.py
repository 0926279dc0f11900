"""``nhssynth metadata template``: a metadata YAML to review, written from a data file.

Declared metadata is public and costs no privacy budget, whereas category lists and ``min``/``max``
that a private generator has to read from the rows are released under differential privacy (at a
small epsilon rare categories are lost and numeric ranges come out coarse).  The template is the
cheap way out: it writes the inferred metadata of a table as YAML, with

* each categorical column's observed categories listed but left ``domain: data`` (so nothing read
  from the data becomes public by accident) under a comment asking the user to confirm that the
  list is public (a code list, a data dictionary) and only then to change it to ``declared``;
* no ``min``/``max`` for numeric and datetime columns: the observed range is quoted in a comment
  for information only, with the advice to declare a public, plausible range instead (the
  observed extremes are themselves facts about individual rows).

PyYAML does not write comments, so the text is assembled here line by line (each key and value
is still dumped by PyYAML, so quoting is right) and checked to load back to the metadata it
describes before it is written.
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..exceptions import MetadataError
from ..metadata import ColumnMetadata, Metadata
from .files import write_text

__all__ = ["write_metadata_template", "metadata_template_text", "template_metadata",
           "default_template_path", "summary"]

DEFAULT_MAX_CATEGORIES = 50
_WIDTH = 96  # wrap long flow-style category lists
# data file extensions stripped to name the template (DATA_STEM.metadata.yaml)
_DATA_EXTENSIONS = (".csv.gz", ".csv.bz2", ".csv.xz", ".csv", ".tsv", ".txt", ".parquet", ".pq")

CONFIRM_CATEGORIES = ("read from the data: confirm these categories are public (a code list, a "
                      "data dictionary) and change domain to declared")

_HEADER = """\
nhssynth metadata template{source}
Written by 'nhssynth metadata template': the metadata inferred from the data, for you to review.

Declared domains (category lists, min/max) are treated as PUBLIC: they cost no privacy budget,
and a private generator uses them as they are. Anything marked 'domain: data' was read from the
real rows and is NOT used as public: a private generator spends budget to estimate it (at a
small epsilon rare categories are lost and numeric ranges come out coarse). Loaded as it is,
this file therefore spends exactly the budget that inferred metadata would.

For each column below:
  * categories: keep the list only if it is public (a published code list, a data dictionary);
    then change 'domain: data' to 'domain: declared'. Add public categories that happen not to
    occur in the data; remove any that are not public.
  * min/max: do NOT copy the observed range quoted in the comments: the extremes of the data are
    facts about individual patients. Write a public, plausible range (e.g. from a clinical
    reference or the field's definition) as min and max; those columns already say
    'domain: declared'.
  * kind, dtype, nullable: inferred; correct them if they are wrong.

The comments quote values from the data (categories, observed ranges): until you have reviewed
the file, keep it as confidential as the data itself, and delete those comments before sharing it.

Use it with:  nhssynth dataloader --dataset DATA --metadata FILE   (or --metadata with pipeline)
              DPVAESynthesizer(metadata="FILE")   /   nhssynth.Metadata.from_yaml("FILE")
"""


# --------------------------------------------------------------------------------------------
# YAML pieces
# --------------------------------------------------------------------------------------------
def _key(name: str) -> str:
    """A column name as a YAML mapping key (quoted by PyYAML where needed)."""
    text = yaml.safe_dump({name: 0}, allow_unicode=True, width=10**9, sort_keys=False)
    if text.endswith(": 0\n") and "\n" not in text[:-1] and not text.startswith("?"):
        return text[:-4]
    # very long or unusual names: a double-quoted scalar, which YAML reads back exactly
    return yaml.safe_dump(name, allow_unicode=True, width=10**9, default_style='"').split("\n")[0]


def _field(key: str, value: Any, indent: str) -> list[str]:
    """``key: value`` lines (a list in flow style, wrapped), indented."""
    # default_flow_style=None: a list of scalars in flow style ([a, b]) inside a block mapping;
    # a mapping of scalars only would itself become flow style, hence False for scalars
    flow = None if isinstance(value, (list, tuple)) else False
    text = yaml.safe_dump({key: value}, allow_unicode=True, sort_keys=False,
                          default_flow_style=flow, width=_WIDTH)
    return [indent + line for line in text.rstrip("\n").split("\n")]


def _comment(text: str, indent: str) -> list[str]:
    """``# ...`` lines, wrapped at about 100 characters."""
    lines = []
    for para in text.split("\n"):
        wrapped = textwrap.wrap(para, width=max(40, 100 - len(indent) - 2),
                                break_long_words=False, break_on_hyphens=False) or [""]
        lines.extend(f"{indent}# {w}".rstrip() for w in wrapped)
    return lines


def _fmt_number(value: float, kind: str) -> str:
    if kind == "integer" and float(value).is_integer():
        return str(int(value))
    return f"{float(value):.10g}"


def _observed_range(series: pd.Series, col: ColumnMetadata) -> str | None:
    """``lo to hi`` of the non-missing values, for the comment; None if there are none."""
    values = series.dropna()
    if values.empty:
        return None
    if col.kind == "datetime":
        if not pd.api.types.is_datetime64_any_dtype(values.dtype):
            try:
                values = pd.to_datetime(values, format=col.datetime_format, utc=col.timezone is not None)
            except (ValueError, TypeError):
                return None
        lo, hi = values.min(), values.max()
        if col.datetime_format is not None:
            return f"{lo.strftime(col.datetime_format)} to {hi.strftime(col.datetime_format)}"
        return f"{pd.Timestamp(lo).isoformat()} to {pd.Timestamp(hi).isoformat()}"
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    if numbers.empty:
        return None
    lo, hi = float(numbers.min()), float(numbers.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return f"{_fmt_number(lo, col.kind)} to {_fmt_number(hi, col.kind)}"


# --------------------------------------------------------------------------------------------
# the template
# --------------------------------------------------------------------------------------------
def _too_many(col: ColumnMetadata, max_categories: int) -> bool:
    return (col.kind == "categorical" and col.categories is not None
            and len(col.categories) > max_categories)


def template_metadata(df: pd.DataFrame, *, max_categories: int = DEFAULT_MAX_CATEGORIES,
                      metadata: Metadata | None = None) -> Metadata:
    """The metadata the template describes (what loading the written file gives).

    The inferred metadata (or ``metadata``), with the category list of each categorical column
    that has more than ``max_categories`` values dropped (unless its dtype is ``category``, which
    needs the list); those columns stay ``domain: data``.
    """
    md = Metadata.from_dataframe(df) if metadata is None else metadata.copy()
    for col in md:
        if _too_many(col, max_categories) and col.dtype != "category":
            md = md.update(col.name, categories=None, domain="data")
    return md


def _column_lines(col: ColumnMetadata, series: pd.Series, n_distinct: int | None,
                  max_categories: int) -> list[str]:
    ind = "    "
    fields = col.to_dict()
    for k in ("categories", "domain", "min", "max"):
        fields.pop(k, None)
    lines = [f"  {_key(col.name)}:"]
    for k, v in fields.items():
        lines += _field(k, v, ind)

    if col.kind == "categorical":
        if col.categories is None:
            lines += _comment(
                f"{n_distinct} distinct values in the data, more than --max-categories "
                f"{max_categories}: not listed. A column with this many values is probably an "
                f"identifier or free text: consider 'kind: id' (not modelled) or dropping it. If "
                f"it is a genuine code list, write its public list as 'categories:' and change "
                f"domain to declared.", ind)
        else:
            if len(col.categories) > max_categories:
                lines += _comment(
                    f"{len(col.categories)} categories, more than --max-categories "
                    f"{max_categories}: listed anyway because dtype 'category' needs its "
                    f"categories. So many values may mean an identifier or free text.", ind)
            lines.append(f"{ind}# {CONFIRM_CATEGORIES}")  # one line, so that it can be searched
            lines += _field("categories", col.categories, ind)
        lines += _field("domain", col.domain, ind)
    elif col.kind in ("continuous", "integer", "datetime"):
        observed = _observed_range(series, col)
        lines += _comment(f"observed in the data: {observed} (for information only: NOT public, "
                          f"do not copy it)" if observed is not None
                          else "no values in the data", ind)
        lines += _comment(
            "declare a public, plausible range instead, e.g. the collection period, as ISO dates "
            "(min: '2000-01-01' and max: '2030-12-31' lines); without one a private generator "
            "estimates the range under the budget" if col.kind == "datetime" else
            "declare a public, plausible range instead, e.g. from a clinical reference or the "
            "field's definition (min: and max: lines); without one a private generator estimates "
            "the range under the budget", ind)
        lines += _field("domain", col.domain, ind)
    elif col.kind == "id":
        lines += _comment("identifier or free text (kind id): not modelled; synthetic rows get "
                          "fresh placeholder ids. Change the kind if this is wrong.", ind)
    elif col.kind == "boolean" and col.categories is not None:
        lines += _field("categories", col.categories, ind)
        if col.domain != "declared":
            lines += _field("domain", col.domain, ind)
    return lines


def metadata_template_text(df: pd.DataFrame, *, max_categories: int = DEFAULT_MAX_CATEGORIES,
                           source: str | None = None, metadata: Metadata | None = None) -> str:
    """The YAML text of the template (see :func:`write_metadata_template`; ``metadata``: the
    inferred metadata of ``df`` if already at hand).

    Raises
    ------
    MetadataError
        The metadata cannot be inferred from ``df`` (see :meth:`Metadata.from_dataframe`).
    """
    if not isinstance(max_categories, int) or isinstance(max_categories, bool) or max_categories < 0:
        raise MetadataError(f"max_categories must be a non-negative integer, got {max_categories!r}.")
    inferred = Metadata.from_dataframe(df) if metadata is None else metadata
    md = template_metadata(df, max_categories=max_categories, metadata=inferred)
    header = _HEADER.format(source=f" for {source}" if source else "")
    lines = [f"# {line}".rstrip() for line in header.rstrip("\n").split("\n")]
    lines += ["", "nhssynth_metadata: 1", "columns:"]
    for col in md:
        n_distinct = int(df[col.name].nunique()) if col.kind == "categorical" else None
        lines += _column_lines(col, df[col.name], n_distinct, max_categories)
    text = "\n".join(lines) + "\n"
    # the text must describe exactly ``md``: nothing lost, nothing made public
    try:
        back = Metadata.from_yaml(text)
    except MetadataError as exc:  # pragma: no cover - a bug in the text builder
        raise RuntimeError(f"the metadata template does not load back: {exc}") from exc
    if back.to_dict() != md.to_dict():  # pragma: no cover - a bug in the text builder
        raise RuntimeError("the metadata template does not load back to the inferred metadata.")
    return text


def default_template_path(data_path: str | Path) -> Path:
    """``DATA_STEM.metadata.yaml`` beside the data file."""
    path = Path(data_path)
    name = path.name
    for ext in _DATA_EXTENSIONS:
        if name.lower().endswith(ext) and len(name) > len(ext):
            return path.with_name(name[: -len(ext)] + ".metadata.yaml")
    return path.with_name(path.stem + ".metadata.yaml")


def write_metadata_template(df: pd.DataFrame, path: str | Path, *,
                            max_categories: int = DEFAULT_MAX_CATEGORIES,
                            overwrite: bool = False, source: str | None = None,
                            metadata: Metadata | None = None) -> Path:
    """Write a metadata YAML template for ``df`` to ``path``, for the user to review.

    Every column's inferred kind, dtype and missingness; categorical columns list their observed
    categories (sorted, or in the dtype's order for a ``category`` dtype) as ``domain: data``
    under a comment asking to confirm they are public before changing the domain to
    ``declared``; categorical columns with more than ``max_categories`` distinct values get no
    list (they are probably identifiers or free text); numeric and datetime columns get no
    ``min``/``max``, only a comment quoting the observed range for information and asking for a
    public, plausible range.  Loaded as it is (:meth:`Metadata.from_yaml`), the file gives the
    inferred metadata: nothing read from the data is declared public.

    Parameters
    ----------
    df : DataFrame
    path : str or Path
        Where to write (folders are created; the file is written atomically).
    max_categories : int, default 50
    overwrite : bool, default False
        Replace an existing file; otherwise an existing ``path`` is an error.
    source : str, optional
        Where the data came from, named in the header comment.
    metadata : Metadata, optional
        ``Metadata.from_dataframe(df)`` if already at hand (it is inferred otherwise).

    Returns
    -------
    Path

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is false.
    MetadataError
        The metadata cannot be inferred from ``df``.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder; give a file name for the template.")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} already exists; pass --force (overwrite=True) to "
                              f"replace it.")
    text = metadata_template_text(df, max_categories=max_categories, source=source,
                                  metadata=metadata)
    return write_text(path, text)


def summary(md: Metadata) -> dict[str, list[str]]:
    """Column names by what the user has to check: ``categories`` (lists to confirm),
    ``unlisted`` (too many values to list), ``ranges`` (min/max to declare), ``ids``."""
    out: dict[str, list[str]] = {"categories": [], "unlisted": [], "ranges": [], "ids": []}
    for col in md:
        if col.kind == "categorical":
            out["categories" if col.categories is not None else "unlisted"].append(col.name)
        elif col.kind in ("continuous", "integer", "datetime"):
            out["ranges"].append(col.name)
        elif col.kind == "id":
            out["ids"].append(col.name)
    return out

