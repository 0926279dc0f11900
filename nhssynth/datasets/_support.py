"""Loader for the bundled SUPPORT2 table (CC BY 4.0, Vanderbilt Biostatistics / UCI id 880)."""
from __future__ import annotations

from importlib import resources

import pandas as pd

from ..metadata import Metadata

EXAMPLE_CITATION = (
    "SUPPORT2 — Study to Understand Prognoses Preferences Outcomes and Risks of Treatment. "
    "Vanderbilt University Department of Biostatistics; UCI Machine Learning Repository, id 880, "
    "https://doi.org/10.24432/C5VG7V. Licence: CC BY 4.0."
)

# Column groups (from the SUPPORT2 data dictionary).  Binary 0/1 outcomes and flags become
# ``bool``; integer-valued scores/counts that have missing values become nullable ``Int64``.
_BOOL = ["death", "hospdead", "diabetes", "dementia"]
_INT = ["sno", "slos", "d.time", "num.co", "hday"]
_NULLABLE_INT = ["edu", "scoma", "dnrday", "adlp", "adls"]
_CATEGORICAL = {
    "sex": (["female", "male"], False),
    "dzgroup": (["ARF/MOSF w/Sepsis", "CHF", "COPD", "Cirrhosis", "Colon Cancer", "Coma",
                 "Lung Cancer", "MOSF w/Malig"], False),
    "dzclass": (["ARF/MOSF", "COPD/CHF/Cirrhosis", "Cancer", "Coma"], False),
    "income": (["under $11k", "$11-$25k", "$25-$50k", ">$50k"], True),
    "race": (["asian", "black", "hispanic", "other", "white"], False),
    "ca": (["no", "yes", "metastatic"], True),
    "dnr": (["dnr after sadm", "dnr before sadm", "no dnr"], False),
    "sfdm2": (["no(M2 and SIP pres)", "adl>=4 (>=5 if sur)", "SIP>=30", "Coma or Intub",
               "<2 mo. follow-up"], False),
}


def _read() -> pd.DataFrame:
    path = resources.files(__package__).joinpath("data", "support2.csv.gz")
    with resources.as_file(path) as p:
        df = pd.read_csv(p, compression="gzip",
                         dtype={c: str for c in _CATEGORICAL} | {c: "float64" for c in _NULLABLE_INT})
    for c in _BOOL:
        df[c] = df[c].astype(bool)
    for c in _INT:
        df[c] = df[c].astype("int64")
    for c in _NULLABLE_INT:
        df[c] = df[c].astype("Int64")
    for c, (cats, ordered) in _CATEGORICAL.items():
        unknown = set(df[c].dropna()) - set(cats)
        if unknown:  # guards the hand-written lists above against a changed data file
            raise RuntimeError(f"bundled SUPPORT2 column {c!r} has unexpected values {unknown}")
        df[c] = pd.Categorical(df[c], categories=cats, ordered=ordered)
    return df


def load_example(*, return_metadata: bool = False):
    """Load the SUPPORT2 clinical table shipped with nhssynth.

    9,105 rows x 48 columns; dtypes: ``bool`` for 0/1 outcomes, ``Int64`` for integer scores
    with missing values, ordered/unordered ``category`` for categoricals, ``float64``
    measurements with NaN.  ``sno`` is a row identifier (metadata kind ``id``).

    Parameters
    ----------
    return_metadata : bool, default False
        Also return the :class:`~nhssynth.Metadata` shipped with the data.  Its category lists
        are taken from the public SUPPORT2 data dictionary and marked ``domain: declared``, so
        DP fits spend no budget on them; numeric bounds are not declared.

    Returns
    -------
    df : DataFrame
    metadata : Metadata, only if ``return_metadata``

    Notes
    -----
    Source: Vanderbilt University Department of Biostatistics, UCI Machine Learning Repository
    id 880 (https://doi.org/10.24432/C5VG7V), licensed CC BY 4.0.
    """
    df = _read()
    if not return_metadata:
        return df
    return df, example_metadata(df)


def example_metadata(df: pd.DataFrame | None = None) -> Metadata:
    """Metadata of the bundled table with the data dictionary's categories declared public."""
    df = _read() if df is None else df
    md = Metadata.from_dataframe(df)
    for c in _CATEGORICAL:
        md = md.update(c, domain="declared")
    return md
