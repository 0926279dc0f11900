"""The CLI's configuration: every option, its default, its validation, and YAML round trips.

A configuration is a nested dict with top-level keys (``seed``, ``dataset``...) and one section
per module (``dataloader``, ``model``, ``evaluation``, ``plotting``, ``dashboard``).  It is
resolved in three layers: built-in defaults, then a YAML file (``-c``), then command-line flags.
The *resolved* configuration fills in every default (and the seed and experiment name actually
used), so writing it back (``--save-config``) and running ``nhssynth config -c`` on that file
reproduces the run exactly.
"""
from __future__ import annotations

import copy
import datetime as _dt
import difflib
import math
import numbers
import os
import re
import secrets
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from ..exceptions import NhssynthError
from ..metadata import SEP_NAMES

__all__ = ["ConfigError", "Option", "OPTIONS", "SECTIONS", "STEPS", "ARCHITECTURES",
           "GRID_PARAMS", "UPSTREAM_ALIASES", "default_config", "load_config_file", "find_config",
           "packaged_configs", "merge", "resolve_config", "config_to_yaml", "validate_config",
           "flat_get"]

STEPS = ("dataloader", "model", "evaluation", "plotting", "dashboard")
SECTIONS = STEPS
FORMAT_KEY = "nhssynth_config"
FORMAT_VERSION = 1

# architecture -> hyper-parameters it accepts (names of model-section keys)
ARCHITECTURES: dict[str, tuple[str, ...]] = {
    "AIM": ("epsilon", "delta", "n_bins", "degree"),
    "DPVAE": ("epsilon", "delta", "max_epochs", "batch_size", "hidden_dims", "latent_dim",
              "learning_rate"),
    "VAE": ("max_epochs", "batch_size", "hidden_dims", "latent_dim", "learning_rate"),
    "Marginal": ("epsilon", "bins"),
}
GRID_PARAMS = ("epsilon", "delta", "max_epochs", "batch_size", "hidden_dims", "latent_dim",
               "learning_rate", "bins", "n_bins", "degree")


class ConfigError(NhssynthError, ValueError):
    """A configuration file or a flag is invalid (unknown key, wrong type, bad value...)."""


# --------------------------------------------------------------------------------------------
# value checkers: take a YAML/CLI value, return the normalised value or raise ConfigError
# --------------------------------------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _str(v: Any, key: str) -> str:
    if not isinstance(v, (str, int, float)) or isinstance(v, bool):
        raise ConfigError(f"{key} must be a string, got {v!r}.")
    return str(v)


def _opt_str(v: Any, key: str) -> str | None:
    return None if v is None else _str(v, key)


def _name(v: Any, key: str) -> str | None:
    if v is None:
        return None
    v = _str(v, key)
    if not v or v in (".", "..") or "/" in v or "\\" in v or v.startswith("."):
        raise ConfigError(f"{key} must be a plain folder name (no '/' and not starting with '.'), "
                          f"got {v!r}.")
    return v


def _seed(v: Any, key: str) -> int | None:
    if v is None:
        return None
    if not _is_int(v) or not 0 <= v < 2**32:
        raise ConfigError(f"{key} must be an integer in [0, 2**32), got {v!r}.")
    return int(v)


def _bool(v: Any, key: str) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"{key} must be true or false, got {v!r}.")
    return v


def _pos_int(v: Any, key: str, *, allow_none: bool = False) -> int | None:
    if v is None and allow_none:
        return None
    if not _is_int(v) or v <= 0:
        raise ConfigError(f"{key} must be a positive integer{' or null' if allow_none else ''}, "
                          f"got {v!r}.")
    return int(v)


def _fraction(v: Any, key: str) -> float:
    if not _is_real(v) or not 0 <= v < 1:
        raise ConfigError(f"{key} must be a number in [0, 1), got {v!r}.")
    return float(v)


def _sep(v: Any, key: str) -> str | None:
    if v is None:
        return None
    if isinstance(v, str) and v:
        v = SEP_NAMES.get(v.lower(), v)
        if len(v) == 1 and v not in "\"\r\n":
            return v
    raise ConfigError(f"{key} must be one character such as ';' or ',' (or 'tab'), or null to "
                      f"sniff it from the file; got {v!r}.")


def _port(v: Any, key: str) -> int:
    if not _is_int(v) or not 0 <= v <= 65535:
        raise ConfigError(f"{key} must be a port number in [0, 65535] (0 picks a free port), got {v!r}.")
    return int(v)


def _listify(v: Any) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _nonempty(values: list, key: str) -> list:
    if not values:
        raise ConfigError(f"{key} must list at least one value.")
    return values


def _grid(check: Callable[[Any, str], Any]) -> Callable[[Any, str], list]:
    def run(v: Any, key: str) -> list:
        return _nonempty([check(x, key) for x in _listify(v)], key)
    return run


def _epsilon(v: Any, key: str) -> float:
    if not _is_real(v) or not math.isfinite(v) or v <= 0:
        raise ConfigError(f"{key} must be a positive finite number (the privacy budget; use the "
                          f"'VAE' architecture for non-private training), got {v!r}.")
    return float(v)


def _delta(v: Any, key: str) -> float | None:
    if v is None:
        return None
    if not _is_real(v) or not 0 < v < 1:
        raise ConfigError(f"{key} must be in (0, 1) or null (the default min(1e-5, 0.1/n_rows)), "
                          f"got {v!r}.")
    return float(v)


def _batch_size(v: Any, key: str) -> int | str:
    if isinstance(v, str) and v.strip().lower() == "auto":
        return "auto"
    if not _is_int(v) or v <= 0:
        raise ConfigError(f"{key} must be a positive integer or 'auto' (min(1024, max(16, "
                          f"n_rows // 4))), got {v!r}.")
    return int(v)


def _degree(v: Any, key: str) -> int:
    if not _is_int(v) or v not in (2, 3):
        raise ConfigError(f"{key} must be 2 or 3 (the largest marginal AIM measures), got {v!r}.")
    return int(v)


def _n_bins(v: Any, key: str) -> int:
    if not _is_int(v) or v < 2:
        raise ConfigError(f"{key} must be an integer of at least 2, got {v!r}.")
    return int(v)


def _pos_real(v: Any, key: str) -> float:
    if not _is_real(v) or not math.isfinite(v) or v <= 0:
        raise ConfigError(f"{key} must be a positive number, got {v!r}.")
    return float(v)


def _hidden_dims(v: Any, key: str) -> list[list[int]]:
    values = _listify(v)
    if values and all(_is_int(x) for x in values):  # one architecture: [64, 64]
        values = [values]
    out = []
    for dims in values:
        dims = _listify(dims)
        if not dims or not all(_is_int(h) and h > 0 for h in dims):
            raise ConfigError(f"{key} must be a list of positive layer widths, e.g. [64, 64], or a "
                              f"list of such lists for a grid; got {v!r}.")
        out.append([int(h) for h in dims])
    return _nonempty(out, key)


def _architectures(v: Any, key: str) -> list[str]:
    out = []
    lookup = {a.lower(): a for a in ARCHITECTURES}
    for a in _listify(v):
        name = lookup.get(str(a).lower())
        if name is None:
            close = difflib.get_close_matches(str(a).lower(), list(lookup), n=1, cutoff=0.5)
            hint = f"did you mean {lookup[close[0]]!r}? " if close else ""
            raise ConfigError(f"{key}: unknown architecture {a!r}; {hint}choose from "
                              f"{', '.join(ARCHITECTURES)}.")
        if name not in out:
            out.append(name)
    return _nonempty(out, key)


def _steps(v: Any, key: str) -> list[str]:
    values = [str(s).lower() for s in _listify(v)]
    bad = [s for s in values if s not in STEPS]
    if bad:
        raise ConfigError(f"{key}: unknown step(s) {bad}; choose from {', '.join(STEPS)}.")
    return _nonempty([s for s in STEPS if s in values], key)


# --------------------------------------------------------------------------------------------
# the option table (one row per config key; the CLI flags are generated from it)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Option:
    """One configuration key and its command-line flag."""

    key: str                      # "seed" or "section.name"
    default: Any
    check: Callable[[Any, str], Any]
    help: str
    flags: tuple[str, ...] = ()
    cli_type: Any = str           # argparse type of one token
    nargs: Any = None
    metavar: str | None = None
    boolean: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def section(self) -> str | None:
        return self.key.split(".", 1)[0] if "." in self.key else None

    @property
    def name(self) -> str:
        return self.key.rsplit(".", 1)[-1]


def _none_or(conv: Callable[[str], Any]) -> Callable[[str], Any]:
    def run(s: str) -> Any:
        return None if s.lower() in ("none", "null") else conv(s)
    run.__name__ = getattr(conv, "__name__", "value")
    return run


def _int_or_auto(s: str) -> int | str:
    return "auto" if s.strip().lower() == "auto" else int(s)


_int_or_auto.__name__ = "integer or 'auto'"


def _dims(s: str) -> list[int]:
    try:
        return [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise ValueError(s) from None


_dims.__name__ = "comma-separated integers"

def _scalar(text: str) -> Any:
    """A condition value typed on a command line: a number, true/false, null, else text."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none", "nan"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


_CONDITION = re.compile(r"^\s*([^<>=!\s]+)\s*(>=|<=|=|\s+in\s+)\s*(.*?)\s*$")


def _conditions(value: Any, key: str) -> dict:
    """``--condition sex=F age>=60 "dx in E10,E11"`` or a YAML mapping -> ``sample(conditions=)``."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        out = {}
        for col, spec in value.items():
            if isinstance(spec, Mapping):
                unknown = set(spec) - {"min", "max"}
                if unknown:
                    raise ConfigError(f"{key}.{col}: a range is {{min: ..., max: ...}}; unknown "
                                      f"key(s) {sorted(unknown)}.")
                out[str(col)] = {"min": spec.get("min"), "max": spec.get("max")}
            else:
                out[str(col)] = spec
        return out
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"{key}: expected a mapping (YAML) or COL=VALUE, COL>=LOW, COL<=HIGH, "
                          f"'COL in A,B' (command line), got {value!r}.")
    out: dict[str, Any] = {}
    for token in value:
        m = _CONDITION.match(str(token))
        if not m:
            raise ConfigError(f"{key}: cannot read condition {token!r}; write COL=VALUE, "
                              "COL>=LOW, COL<=HIGH or 'COL in A,B'.")
        col, op, rhs = m.group(1), m.group(2).strip(), m.group(3)
        if op == "=":
            out[col] = _scalar(rhs)
        elif op == "in":
            out[col] = [_scalar(v) for v in rhs.split(",") if v.strip()]
        else:
            rng = out.get(col) if isinstance(out.get(col), dict) else {"min": None, "max": None}
            rng["min" if op == ">=" else "max"] = _scalar(rhs)
            out[col] = rng
    return out


OPTIONS: tuple[Option, ...] = (
    # ---- common -----------------------------------------------------------------------------
    Option("dataset", None, _opt_str,
           "dataset: NAME of NAME.csv / NAME.parquet in --data-dir, a file path, or 'example' "
           "(the bundled SUPPORT2 table)", ("--dataset", "-d"), metavar="NAME"),
    Option("data_dir", "data", _str, "folder searched for --dataset", ("--data-dir",),
           metavar="DIR"),
    Option("metadata", None, _opt_str,
           "metadata YAML (default: NAME.yaml or NAME_metadata.yaml beside the data, else "
           "inferred and written to the experiment folder)", ("--metadata", "-m"), metavar="YAML"),
    Option("experiments_dir", "experiments", _str, "root folder of all experiments",
           ("--experiments-dir",), metavar="DIR"),
    Option("experiment_name", None, _name,
           "experiment folder under --experiments-dir (default: a timestamp for dataloader / "
           "pipeline, the latest experiment for the other commands)",
           ("--experiment-name", "-e"), metavar="NAME"),
    Option("seed", None, _seed,
           "master seed; the same seed reproduces identical outputs (default: drawn at random "
           "and recorded in the saved config)", ("--seed", "-s"), cli_type=_none_or(int),
           metavar="INT"),
    Option("steps", list(STEPS), _steps,
           "steps run by 'pipeline' and 'config'", ("--steps",), nargs="+", metavar="STEP"),
    # ---- dataloader ---------------------------------------------------------------------------
    Option("dataloader.holdout_fraction", 0.2, _fraction,
           "share of rows kept out of training as a holdout for evaluation (0 for none)",
           ("--holdout-fraction",), cli_type=float, metavar="F"),
    Option("dataloader.max_rows", None, lambda v, k: _pos_int(v, k, allow_none=True),
           "use a seeded random subset of at most this many rows (quick runs)",
           ("--max-rows",), cli_type=_none_or(int), metavar="N"),
    Option("dataloader.sep", None, _sep,
           "CSV field delimiter, e.g. ';' or tab (default: sniffed from the first lines among "
           ", ; tab |)", ("--sep",), cli_type=_none_or(str), metavar="SEP"),
    Option("dataloader.encode", True, _bool,
           "fit the TableEncoder and save the encoded training matrix", ("--encode",),
           boolean=True),
    # ---- model ------------------------------------------------------------------------------
    Option("model.architectures", ["DPVAE", "Marginal"], _architectures,
           f"synthesizers to fit: {', '.join(ARCHITECTURES)} (AIM: marginals and a graphical "
           f"model, the one to use at epsilon <= 3; VAE is the non-private DP-VAE)",
           ("--architectures", "--arch", "-a"), nargs="+", metavar="ARCH"),
    Option("model.repeats", 1, _pos_int, "fits per grid point (different seeds)",
           ("--repeats", "-r"), cli_type=int, metavar="N"),
    Option("model.num_samples", None, lambda v, k: _pos_int(v, k, allow_none=True),
           "synthetic rows per run (default: as many as training rows)", ("--num-samples", "-n"),
           cli_type=_none_or(int), metavar="N"),
    Option("model.conditions", None, _conditions,
           "sample only rows meeting these conditions (exact; AIM conditions its model, the "
           "others draw until enough rows meet them): COL=VALUE, COL>=LOW, COL<=HIGH, "
           "'COL in A,B'; in YAML a mapping such as {sex: F, age: {min: 60}}",
           ("--condition",), nargs="+", metavar="COND"),
    Option("model.epsilon", [1.0], _grid(_epsilon),
           "privacy budget(s); a list expands into a grid (AIM, DPVAE, Marginal)", ("--epsilon",),
           cli_type=float, nargs="+", metavar="EPS"),
    Option("model.delta", [None], _grid(_delta),
           "DP delta(s) (AIM, DPVAE; null: min(1e-5, 0.1/n_rows))", ("--delta",),
           cli_type=_none_or(float), nargs="+", metavar="DELTA"),
    Option("model.max_epochs", [60], _grid(_pos_int), "training epochs (DPVAE, VAE)",
           ("--max-epochs",), cli_type=int, nargs="+", metavar="N"),
    Option("model.batch_size", ["auto"], _grid(_batch_size),
           "expected batch size, or auto: min(1024, max(16, n_rows // 4)) (DPVAE, VAE)",
           ("--batch-size",), cli_type=_int_or_auto, nargs="+", metavar="N"),
    Option("model.hidden_dims", [[128]], _hidden_dims,
           "hidden layer widths, one comma-separated list per grid point, e.g. 64,64 128",
           ("--hidden-dims",), cli_type=_dims, nargs="+", metavar="W,W"),
    Option("model.latent_dim", [4], _grid(_pos_int), "latent dimension (DPVAE, VAE)",
           ("--latent-dim",), cli_type=int, nargs="+", metavar="N"),
    Option("model.learning_rate", [0.01], _grid(_pos_real), "Adam learning rate (DPVAE, VAE)",
           ("--learning-rate",), cli_type=float, nargs="+", metavar="LR"),
    Option("model.bins", [20], _grid(_pos_int), "histogram bins of numeric columns (Marginal)",
           ("--bins",), cli_type=int, nargs="+", metavar="N"),
    Option("model.n_bins", [16], _grid(_n_bins),
           "codes per numeric column in the graphical model (AIM)", ("--n-bins",), cli_type=int,
           nargs="+", metavar="N"),
    Option("model.degree", [2], _grid(_degree),
           "largest marginal measured, 2 or 3 (AIM)", ("--degree",), cli_type=int, nargs="+",
           metavar="D"),
    # ---- evaluation -------------------------------------------------------------------------
    Option("evaluation.target", None, _opt_str,
           "column predicted in the downstream (train-synthetic-test-real) utility task",
           ("--target", "-t"), metavar="COLUMN"),
    Option("evaluation.baseline", True, _bool,
           "also score an independent-columns baseline next to every metric", ("--baseline",),
           boolean=True),
    Option("evaluation.max_rows", 10_000, lambda v, k: _pos_int(v, k, allow_none=True),
           "row cap for detection and distance metrics", ("--eval-max-rows",),
           cli_type=_none_or(int), metavar="N"),
    # ---- plotting ---------------------------------------------------------------------------
    Option("plotting.max_columns", 24, _pos_int, "columns drawn in the marginals figure",
           ("--plot-max-columns",), cli_type=int, metavar="N"),
    # ---- dashboard --------------------------------------------------------------------------
    Option("dashboard.serve", False, _bool,
           "serve the experiment folder over HTTP after building the index (Ctrl-C stops)",
           ("--serve",), boolean=True),
    Option("dashboard.host", "127.0.0.1", _str, "address to serve on", ("--host",),
           metavar="HOST"),
    Option("dashboard.port", 8000, _port, "port to serve on (0: any free port)", ("--port",),
           cli_type=int, metavar="PORT"),
)
OPTION_BY_KEY = {o.key: o for o in OPTIONS}

# Flags and config keys of the upstream NHSSynth CLI (github.com/nhsx/NHSSynth, module
# src/nhssynth/cli/module_arguments.py) accepted as aliases of ours: option key -> flags.
UPSTREAM_ALIASES: dict[str, tuple[str, ...]] = {
    "model.max_epochs": ("--num-epochs",),
    "model.architectures": ("--architecture",),
    "model.epsilon": ("--target-epsilon",),
    "model.delta": ("--target-delta",),
}
# the same as config-file keys (section -> upstream name -> our name)
_CONFIG_ALIASES: dict[str, dict[str, str]] = {}
for _key, _flags in UPSTREAM_ALIASES.items():
    _section, _name = _key.split(".", 1)
    for _flag in _flags:
        _CONFIG_ALIASES.setdefault(_section, {})[_flag[2:].replace("-", "_")] = _name


# --------------------------------------------------------------------------------------------
# building, merging, validating
# --------------------------------------------------------------------------------------------
def default_config() -> dict:
    """The built-in defaults as a nested dict (``seed`` and ``experiment_name`` unresolved)."""
    cfg: dict[str, Any] = {FORMAT_KEY: FORMAT_VERSION}
    for opt in OPTIONS:
        _set(cfg, opt.key, copy.deepcopy(opt.default))
    return cfg


def _set(cfg: dict, key: str, value: Any) -> None:
    if "." in key:
        section, name = key.split(".", 1)
        cfg.setdefault(section, {})[name] = value
    else:
        cfg[key] = value


def flat_get(cfg: Mapping, key: str) -> Any:
    """``cfg["model"]["epsilon"]`` as ``flat_get(cfg, "model.epsilon")``."""
    if "." in key:
        section, name = key.split(".", 1)
        return cfg[section][name]
    return cfg[key]


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(choices))}."


def check_keys(spec: Mapping, where: str) -> None:
    """Raise :class:`ConfigError` for any key that is not a known option (with a suggestion)."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: a config must be a YAML mapping of keys to values, got "
                          f"{type(spec).__name__}.")
    top = [o.key for o in OPTIONS if o.section is None] + list(SECTIONS) + [FORMAT_KEY]
    for key, value in spec.items():
        if key not in top:
            flat = {o.name: o.key for o in OPTIONS}
            hint = (f"; it belongs in section {flat[key].split('.')[0]!r}" if key in flat and "." in flat[key]
                    else _suggest(str(key), top))
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")
        if key in SECTIONS:
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: section {key!r} must be a mapping, got {value!r}.")
            names = [o.name for o in OPTIONS if o.section == key]
            for sub in value:
                if sub not in names:
                    raise ConfigError(f"{where}: unknown key {sub!r} in section {key!r}"
                                      + _suggest(str(sub), names))
    version = spec.get(FORMAT_KEY, FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ConfigError(f"{where}: config format version {version!r} is not supported "
                          f"(expected {FORMAT_VERSION}).")


def merge(base: dict, override: Mapping) -> dict:
    """Copy of ``base`` with the keys present in ``override`` (nested, section-wise) replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key in SECTIONS and isinstance(value, Mapping):
            out.setdefault(key, {}).update(copy.deepcopy(dict(value)))
        elif key in SECTIONS and value is None:
            continue
        else:
            out[key] = copy.deepcopy(value)
    return out


def validate_config(cfg: dict) -> dict:
    """Check and normalise every value (lists for grid parameters); return a new dict."""
    out: dict[str, Any] = {FORMAT_KEY: FORMAT_VERSION}
    for opt in OPTIONS:
        _set(out, opt.key, opt.check(flat_get(cfg, opt.key), opt.key))
    return out


def packaged_configs() -> list[str]:
    """Names of the example configs shipped inside the package (``nhssynth/cli/configs``)."""
    folder = resources.files(__package__).joinpath("configs")
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir()
                  if p.name.endswith((".yaml", ".yml")))


def find_config(name: str | os.PathLike, config_dir: str | os.PathLike = "config") -> Path:
    """Locate a config: an existing path, ``<config_dir>/<name>.yaml`` (``.yml``), or an example
    config shipped with the package (``demo``, ``quick``, ``privacy_sweep``,
    ``full_evaluation``).

    Raises
    ------
    FileNotFoundError
        Naming the places searched and the configs available.
    """
    path = Path(name)
    if path.is_file():
        return path
    candidates = [Path(config_dir) / f"{name}.yaml", Path(config_dir) / f"{name}.yml"]
    for cand in candidates:
        if cand.is_file():
            return cand
    packaged = packaged_configs()
    if str(name) in packaged:
        folder = resources.files(__package__).joinpath("configs")
        for ext in (".yaml", ".yml"):
            found = folder.joinpath(f"{name}{ext}")
            if found.is_file():
                return Path(str(found))
    local = sorted(p.stem for p in Path(config_dir).glob("*.y*ml")) if Path(config_dir).is_dir() else []
    available = sorted(set(local) | set(packaged))
    raise FileNotFoundError(
        f"config {str(name)!r} not found (looked for {str(path)!r}, "
        f"{', '.join(repr(str(c)) for c in candidates)} and the bundled configs)"
        + (f"; available: {', '.join(available)}." if available else "."))


def _rename_aliases(spec: Mapping, where: str) -> Mapping:
    """Upstream NHSSynth config keys (``model: {num_epochs: ...}``) renamed to ours."""
    if not isinstance(spec, Mapping):
        return spec
    out = dict(spec)
    for section, aliases in _CONFIG_ALIASES.items():
        body = out.get(section)
        if not isinstance(body, Mapping):
            continue
        body = dict(body)
        for old, new in aliases.items():
            if old in body:
                if new in body:
                    raise ConfigError(f"{where}: section {section!r} sets both {new!r} and its "
                                      f"NHSSynth alias {old!r}; keep one.")
                body[new] = body.pop(old)
        out[section] = body
    return out


def load_config_file(path: str | os.PathLike) -> dict:
    """Read a YAML config and check its keys (values are validated after merging)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {str(path)!r} does not exist.") from None
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config file {str(path)!r} is not valid YAML{where}: {problem}.") from None
    if spec is None:
        spec = {}
    spec = _rename_aliases(spec, f"config file {str(path)!r}")
    check_keys(spec, f"config file {str(path)!r}")
    return spec


def resolve_config(file_spec: Mapping | None, cli: Mapping[str, Any], *,
                   default_name: Callable[[dict], str | None] | None = None) -> dict:
    """Defaults <- file <- flags; validate; fill in the seed and experiment name.

    Parameters
    ----------
    file_spec : dict or None
        The loaded YAML config.
    cli : dict
        Flags given on the command line, keyed by option key (``"model.epsilon"``).
    default_name : callable, optional
        Called with the validated config when no experiment name is set; ``None`` from it means
        a timestamp.
    """
    cfg = default_config()
    if file_spec:
        cfg = merge(cfg, file_spec)
    for key, value in cli.items():
        _set(cfg, key, value)
    cfg = validate_config(cfg)
    if cfg["seed"] is None:
        cfg["seed"] = secrets.randbelow(2**31)
    if cfg["experiment_name"] is None:
        name = default_name(cfg) if default_name is not None else None
        cfg["experiment_name"] = name or _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return cfg


_HEADER = ("# nhssynth configuration (resolved: every default filled in).\n"
           "# Reproduce this run exactly with:  nhssynth config -c <this file>\n")


def config_to_yaml(cfg: Mapping) -> str:
    """YAML text of a (resolved) config, sections in a fixed order."""
    ordered: dict[str, Any] = {FORMAT_KEY: FORMAT_VERSION}
    for opt in OPTIONS:
        if opt.section is None:
            ordered[opt.key] = cfg[opt.key]
    for section in SECTIONS:
        ordered[section] = {o.name: cfg[section][o.name] for o in OPTIONS if o.section == section}
    return _HEADER + yaml.safe_dump(ordered, sort_keys=False, default_flow_style=None, width=100)


_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


def slug(text: str) -> str:
    """File-system-safe version of ``text``."""
    return _SLUG.sub("-", text).strip("-") or "x"
