"""Real tables bundled inside PyPI packages, for the robustness sweep (``bench_robustness.py``).

Every table here ships *inside* an installed package (scikit-learn, lifelines,
scikit-survival, statsmodels): no loader downloads anything.  Loaders that would download
(``sklearn.datasets.fetch_*``, ``statsmodels.datasets.get_rdataset``, ``webuse``) are not used.

A table is named ``<source>.<dataset>``; its loader returns the DataFrame as the package gives
it (scikit-learn: ``as_frame=True`` with the target as a column; scikit-survival: the features
plus the fields of the structured survival target, e.g. ``death`` bool and ``futime`` float;
statsmodels: ``load_pandas().data`` with a non-trivial index, such as co2's dates, turned into a
column).

lifelines 0.30 requires ``pandas<3`` while nhssynth's environment runs pandas 3, so the loaders
may run in another Python (``--tables-python`` of the benchmark, by default the peers
environment): this module then runs as a script and pickles each table::

    python benchmarks/_robust_tables.py OUT_DIR [NAME ...]

writes ``OUT_DIR/<name>.pkl`` for each table it could load and ``OUT_DIR/manifest.json``
(``{name: {"ok": bool, "error": str | None, "shape": [rows, cols]}}``).  :func:`as_local`
re-infers object columns in the reading pandas (pandas 3 makes all-text columns ``str``),
so that a table reads as it would had the package been loaded there.

Only pandas/numpy at import time: the packages are imported by the loaders.
"""
from __future__ import annotations

import json
import pickle
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Source:
    """Where a table comes from."""

    package: str          # import name that must be importable
    dist: str             # PyPI distribution name
    dataset: str          # loader's dataset name
    note: str = ""


def _sklearn(name: str) -> pd.DataFrame:
    from sklearn import datasets
    kwargs = {"as_frame": True}
    if name == "diabetes":
        kwargs["scaled"] = False      # the measured values, not the mean-centred ones
    return getattr(datasets, f"load_{name}")(**kwargs).frame


def _lifelines(name: str) -> pd.DataFrame:
    from lifelines import datasets
    return getattr(datasets, f"load_{name}")()


def _sksurv(name: str) -> pd.DataFrame:
    from sksurv import datasets
    X, y = getattr(datasets, f"load_{name}")()
    df = X.copy()
    for field in y.dtype.names:
        df[field] = y[field]
    return df


def _statsmodels(name: str) -> pd.DataFrame:
    import importlib
    df = importlib.import_module(f"statsmodels.datasets.{name}").load_pandas().data
    if not isinstance(df.index, pd.RangeIndex):
        df = df.reset_index()
        if "index" in df.columns:
            df = df.rename(columns={"index": "date" if name == "co2" else "row"})
    return df


LOADERS: dict[str, tuple[str, str, Callable[[str], pd.DataFrame]]] = {
    "sklearn": ("sklearn", "scikit-learn", _sklearn),
    "lifelines": ("lifelines", "lifelines", _lifelines),
    "sksurv": ("sksurv", "scikit-survival", _sksurv),
    "statsmodels": ("statsmodels", "statsmodels", _statsmodels),
}

_NAMES = {
    "sklearn": ["iris", "wine", "breast_cancer", "diabetes", "linnerud"],
    "lifelines": ["rossi", "gbsg2", "kidney_transplant", "larynx", "lung", "canadian_senators",
                  "dd", "recur", "regression_dataset", "stanford_heart_transplants",
                  "lymph_node", "waltons", "lupus", "nh4", "mice", "leukemia", "diabetes",
                  "lcd"],
    "sksurv": ["aids", "breast_cancer", "flchain", "veterans_lung_cancer", "whas500", "cgvhd",
               "gbsg2"],
    "statsmodels": ["anes96", "fair", "fertility", "grunfeld", "modechoice", "randhie",
                    "star98", "statecrime", "macrodata", "scotland", "spector", "co2", "engel",
                    "longley", "copper", "cancer", "heart", "elnino"],
}

TABLES: dict[str, Source] = {
    f"{src}.{name}": Source(LOADERS[src][0], LOADERS[src][1], name)
    for src, names in _NAMES.items() for name in names
}

# a fast subset needing nothing beyond nhssynth's own dependencies (scikit-learn)
QUICK = ["sklearn.iris", "sklearn.wine", "sklearn.breast_cancer", "sklearn.diabetes",
         "sklearn.linnerud"]


def available(name: str) -> bool:
    """Whether ``name``'s package can be imported in this Python."""
    import importlib.util
    return importlib.util.find_spec(TABLES[name].package) is not None


def load(name: str) -> pd.DataFrame:
    """Load one table in this Python (its package must be installed)."""
    src = name.split(".", 1)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = LOADERS[src][2](TABLES[name].dataset)
    return df.reset_index(drop=True)


def as_local(df: pd.DataFrame) -> pd.DataFrame:
    """Rebuild object columns, and the categories of categorical columns, so that the running
    pandas infers their dtype as it would on loading (all-text ones become ``str`` in pandas 3)."""
    out = df.copy()
    for name in out.columns:
        s = out[name]
        if pd.api.types.is_object_dtype(s.dtype):
            out[name] = pd.Series(s.tolist(), index=s.index, name=name)
        elif isinstance(s.dtype, pd.CategoricalDtype) \
                and pd.api.types.is_object_dtype(s.cat.categories.dtype):
            categories = pd.Index(s.cat.categories.tolist())
            out[name] = pd.Series(pd.Categorical(s.astype(object), categories=categories,
                                                 ordered=s.cat.ordered), index=s.index, name=name)
    return out


def dump(out_dir: Path, names: list[str]) -> dict[str, dict]:
    """Pickle every table in ``names`` that loads here; return the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name in names:
        try:
            df = load(name)
            with open(out_dir / f"{name}.pkl", "wb") as fh:
                pickle.dump(df, fh)
            manifest[name] = {"ok": True, "error": None, "shape": list(df.shape)}
        except Exception as exc:  # noqa: BLE001 - report, go on with the next table
            first = (str(exc).strip().splitlines() or [""])[0]
            manifest[name] = {"ok": False, "error": f"{type(exc).__name__}: {first}",
                              "shape": None}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: _robust_tables.py OUT_DIR [NAME ...]")
    dump(Path(sys.argv[1]), sys.argv[2:] or list(TABLES))
