"""Saving and loading fitted synthesizers without pickle.

A saved model is a directory with

* ``model.json`` — class, constructor parameters and fitted attributes (encoder state, spans,
  privacy ledger, history) as tagged JSON, plus the SHA-256 of the weights file;
* ``weights.pt`` — the torch ``state_dict``, read back with ``torch.load(weights_only=True)``.

Nothing is unpickled and only classes from the ``nhssynth`` package (and a few numpy/pandas
value types) can be reconstructed, so a tampered file raises an error instead of running code.
Weights are mapped to the CPU on load; a model trained on a GPU loads on a CPU-only machine.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .base import OutputSpan
from .constraints import ConstraintPlan
from .constraints.plan import plan_from_state, plan_state
from .exceptions import NhssynthError
from .metadata import ColumnMetadata, Metadata

__all__ = ["save_synthesizer", "load_synthesizer", "ModelFileError", "to_jsonable", "from_jsonable"]

FORMAT = "nhssynth-model"
FORMAT_VERSION = 2  # 2: the network's class is saved with its config
_ALLOWED_TYPES = {"numpy": {"float64", "float32", "int64", "int32", "bool_", "object_"},
                  "builtins": {"float", "int", "bool", "str", "object"}}


class ModelFileError(NhssynthError, ValueError):
    """A saved model is missing, corrupt, tampered with or from an incompatible version."""


# ----------------------------------------------------------------------------------------
# tagged JSON
# ----------------------------------------------------------------------------------------
def _float(x: float):
    if math.isnan(x):
        return {"__float__": "nan"}
    if math.isinf(x):
        return {"__float__": "inf" if x > 0 else "-inf"}
    return x


def to_jsonable(obj: Any, *, skip: tuple = ()) -> Any:
    """Encode ``obj`` as JSON-compatible data with type tags (exact for floats)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, (bool, np.bool_)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        return _float(float(obj))
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "biuf":
            flat = [_float(float(v)) if obj.dtype.kind == "f" else v.item() for v in obj.ravel()]
            return {"__ndarray__": flat, "dtype": obj.dtype.str, "shape": list(obj.shape)}
        if obj.dtype.kind in "Mm":
            return {"__ndarray__": obj.astype(np.int64).ravel().tolist(), "dtype": obj.dtype.str,
                    "shape": list(obj.shape)}
        return {"__objarray__": [to_jsonable(v) for v in obj.ravel()], "shape": list(obj.shape)}
    if isinstance(obj, list):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, tuple):
        return {"__tuple__": [to_jsonable(v) for v in obj]}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {"__dict__": {k: to_jsonable(v) for k, v in obj.items()}}
        return {"__items__": [[to_jsonable(k), to_jsonable(v)] for k, v in obj.items()]}
    if obj is pd.NA:
        return {"__na__": "NA"}
    if obj is pd.NaT:
        return {"__na__": "NaT"}
    if isinstance(obj, pd.Timestamp):
        return {"__timestamp__": obj.isoformat(), "unit": getattr(obj, "unit", "ns")}
    if isinstance(obj, np.datetime64):
        return {"__datetime64__": str(obj)}
    if isinstance(obj, pd.Timedelta):
        return {"__timedelta__": int(obj.value)}
    if isinstance(obj, pd.CategoricalDtype):
        return {"__catdtype__": to_jsonable(list(obj.categories)), "ordered": bool(obj.ordered)}
    if isinstance(obj, (np.dtype, pd.api.extensions.ExtensionDtype)):
        return {"__dtype__": str(obj)}
    if isinstance(obj, pd.Index):
        return {"__index__": to_jsonable(list(obj)), "dtype": to_jsonable(obj.dtype)}
    if isinstance(obj, Metadata):
        return {"__metadata__": obj.to_dict()}
    if isinstance(obj, ColumnMetadata):
        return {"__column__": obj.name, "spec": obj.to_dict()}
    if isinstance(obj, ConstraintPlan):
        return {"__constraint_plan__": to_jsonable(plan_state(obj))}
    if isinstance(obj, OutputSpan):
        return {"__span__": [obj.column, obj.kind, obj.start, obj.width, obj.role]}
    if isinstance(obj, type):
        mod, name = obj.__module__, obj.__qualname__
        if name not in _ALLOWED_TYPES.get(mod, set()):
            raise TypeError(f"cannot save type {mod}.{name}")
        return {"__type__": f"{mod}:{name}"}
    if isinstance(obj, BaseEstimator) and type(obj).__module__.startswith("nhssynth."):
        return {"__estimator__": f"{type(obj).__module__}:{type(obj).__qualname__}",
                "state": {k: to_jsonable(v) for k, v in vars(obj).items() if k not in skip}}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type) \
            and type(obj).__module__.startswith("nhssynth."):
        return {"__dataclass__": f"{type(obj).__module__}:{type(obj).__qualname__}",
                "fields": {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    raise TypeError(f"cannot save an object of type {type(obj).__module__}.{type(obj).__qualname__}")


def _resolve_class(path: str, base_check) -> type:
    module, _, name = path.partition(":")
    if not module.startswith("nhssynth.") or not all(p.isidentifier() for p in name.split(".")):
        raise ModelFileError(f"refusing to load class {path!r}: only nhssynth classes can be loaded.")
    try:
        cls = importlib.import_module(module)
        for part in name.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError):
        raise ModelFileError(f"class {path!r} does not exist in this nhssynth version.") from None
    if not (isinstance(cls, type) and base_check(cls)):
        raise ModelFileError(f"refusing to load {path!r}: not an nhssynth estimator or record.")
    return cls


def _resolve_estimator_class(path: str) -> type:
    module, _, name = path.partition(":")
    if not module.startswith("nhssynth.") or not name.isidentifier():
        raise ModelFileError(f"refusing to load class {path!r}: only nhssynth classes can be loaded.")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise ModelFileError(f"class {path!r} does not exist in this nhssynth version.") from None
    if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)):
        raise ModelFileError(f"refusing to load {path!r}: not an nhssynth estimator.")
    return cls


def from_jsonable(obj: Any) -> Any:
    """Inverse of :func:`to_jsonable`."""
    if isinstance(obj, list):
        return [from_jsonable(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__ndarray__" in obj:
        dtype = np.dtype(obj["dtype"])
        if dtype.kind in "Mm":
            return np.asarray(obj["__ndarray__"], dtype=np.int64).view(dtype).reshape(obj["shape"])
        vals = [from_jsonable(v) for v in obj["__ndarray__"]]
        return np.asarray(vals, dtype=dtype).reshape(obj["shape"])
    if "__objarray__" in obj:
        arr = np.empty(len(obj["__objarray__"]), dtype=object)
        arr[:] = [from_jsonable(v) for v in obj["__objarray__"]]
        return arr.reshape(obj["shape"])
    if "__tuple__" in obj:
        return tuple(from_jsonable(v) for v in obj["__tuple__"])
    if "__dict__" in obj:
        return {k: from_jsonable(v) for k, v in obj["__dict__"].items()}
    if "__items__" in obj:
        return {from_jsonable(k): from_jsonable(v) for k, v in obj["__items__"]}
    if "__na__" in obj:
        return pd.NA if obj["__na__"] == "NA" else pd.NaT
    if "__timestamp__" in obj:
        ts = pd.Timestamp(obj["__timestamp__"])
        return ts.as_unit(obj.get("unit", "ns"))
    if "__datetime64__" in obj:
        return np.datetime64(obj["__datetime64__"])
    if "__timedelta__" in obj:
        return pd.Timedelta(obj["__timedelta__"])
    if "__catdtype__" in obj:
        return pd.CategoricalDtype(from_jsonable(obj["__catdtype__"]), ordered=obj["ordered"])
    if "__dtype__" in obj:
        return pd.api.types.pandas_dtype(obj["__dtype__"])
    if "__index__" in obj:
        return pd.Index(from_jsonable(obj["__index__"]), dtype=from_jsonable(obj["dtype"]))
    if "__metadata__" in obj:
        return Metadata.from_dict(obj["__metadata__"])
    if "__column__" in obj:
        return ColumnMetadata.from_dict(obj["__column__"], obj["spec"])
    if "__span__" in obj:
        return OutputSpan(*obj["__span__"])
    if "__constraint_plan__" in obj:
        return plan_from_state(from_jsonable(obj["__constraint_plan__"]))
    if "__type__" in obj:
        mod, _, name = obj["__type__"].partition(":")
        if name not in _ALLOWED_TYPES.get(mod, set()):
            raise ModelFileError(f"refusing to load type {obj['__type__']!r}.")
        return getattr(importlib.import_module(mod), name)
    if "__dataclass__" in obj:
        cls = _resolve_class(obj["__dataclass__"], dataclasses.is_dataclass)
        return cls(**{k: from_jsonable(v) for k, v in obj["fields"].items()})
    if "__estimator__" in obj:
        cls = _resolve_estimator_class(obj["__estimator__"])
        est = cls.__new__(cls)
        est.__dict__.update({k: from_jsonable(v) for k, v in obj["state"].items()})
        return est
    raise ModelFileError(f"unrecognised entry in model file: keys {sorted(obj)[:5]}")


# ----------------------------------------------------------------------------------------
# save / load
# ----------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_synthesizer(model: BaseEstimator, path: str | os.PathLike) -> Path:
    """Save a fitted synthesizer to the directory ``path`` (created; files replaced atomically).

    A torch network in ``model.network_`` is saved as its ``state_dict`` with its class and
    ``config`` (constructor arguments), so any nhssynth network class can be rebuilt."""
    check_is_fitted(model)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    network = getattr(model, "network_", None)
    with tempfile.TemporaryDirectory(dir=path) as tmp:
        tmp = Path(tmp)
        weights_sha = None
        if network is not None:
            state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
            torch.save(state, tmp / "weights.pt")
            weights_sha = _sha256(tmp / "weights.pt")
        doc = {"format": FORMAT, "version": FORMAT_VERSION,
               "estimator": to_jsonable(model, skip=("network_",)),
               "network": None if network is None else {
                   "class": f"{type(network).__module__}:{type(network).__qualname__}",
                   "config": network.config, "weights_sha256": weights_sha}}
        (tmp / "model.json").write_text(json.dumps(doc, allow_nan=False), encoding="utf-8")
        for name in ("weights.pt", "model.json"):  # model.json last: its presence marks completion
            if (tmp / name).exists():
                os.replace(tmp / name, path / name)
    return path


def load_synthesizer(path: str | os.PathLike, expected_class: type | None = None):
    """Load a synthesizer saved by :func:`save_synthesizer`.

    Raises
    ------
    ModelFileError
        Missing files, an unknown format, a class outside nhssynth, or weights whose checksum
        does not match (tampered or truncated file).
    """
    path = Path(path)
    manifest = path / "model.json"
    if not manifest.exists():
        raise ModelFileError(f"{str(path)!r} is not a saved nhssynth model (no model.json).")
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{str(manifest)!r} is corrupt: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError(f"{str(manifest)!r} is not an nhssynth model file.")
    if doc.get("version") != FORMAT_VERSION:
        raise ModelFileError(f"model file version {doc.get('version')} is not supported "
                             f"(this nhssynth reads version {FORMAT_VERSION}).")
    try:
        model = from_jsonable(doc["estimator"])
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{str(manifest)!r} is corrupt: {exc}") from None
    if expected_class is not None and not isinstance(model, expected_class):
        raise ModelFileError(f"{str(path)!r} holds a {type(model).__name__}, not a {expected_class.__name__}.")
    net_spec = doc.get("network")
    if net_spec is not None:
        weights = path / "weights.pt"
        if not weights.exists():
            raise ModelFileError(f"{str(weights)!r} is missing.")
        if _sha256(weights) != net_spec.get("weights_sha256"):
            raise ModelFileError(f"{str(weights)!r} does not match its checksum in model.json; the "
                                 f"file was modified or truncated.")
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            network_class = _resolve_class(net_spec["class"],
                                           lambda c: issubclass(c, torch.nn.Module))
            network = network_class(**net_spec["config"])
            network.load_state_dict(state)
        except ModelFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure here means an unusable file
            raise ModelFileError(f"cannot load weights from {str(weights)!r}: {exc}") from None
        device = getattr(model, "device", "cpu")
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            warnings.warn(f"model was trained on {device!r}; no GPU here, loading on the CPU.", stacklevel=2)
            model.device = "cpu"
        network.to(model.device)
        network.eval()
        model.network_ = network
    return model
