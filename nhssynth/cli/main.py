"""``nhssynth``: the command-line interface (argparse), thin over the public API.

Run ``nhssynth --help`` or ``nhssynth <command> --help``; ``docs/cli.md`` is the reference.
"""
from __future__ import annotations

import argparse
import difflib
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import yaml

from .._version import __version__
from ..datasets import load_example
from ..exceptions import MetadataWarning, NhssynthError
from ..metadata import Metadata
from ..suggest import SUGGESTED_TYPES, suggest_constraints
from . import commands
from .commands import Console
from .config import (OPTION_BY_KEY, OPTIONS, SECTIONS, UPSTREAM_ALIASES, ConfigError,
                     config_to_yaml, find_config, load_config_file, packaged_configs,
                     resolve_config)
from .dashboard import build_index, serve
from .experiment import Layout, collect_results, expand_runs, latest_experiment
from .files import read_json, write_text
from .template import (DEFAULT_MAX_CATEGORIES, default_template_path, summary, template_metadata,
                       write_metadata_template)

__all__ = ["main", "build_parser"]

PROG = "nhssynth"

_DESCRIPTION = """\
Differentially private synthetic health data from the terminal.

Every command reads its settings from built-in defaults, then an optional YAML config
(-c NAME: a path, ./config/NAME.yaml, or a bundled example config: demo, quick, privacy_sweep,
full_evaluation), then the flags given; --save-config writes the fully
resolved config so that 'nhssynth config -c FILE' reproduces the run exactly (same --seed, same
bytes). Outputs go to EXPERIMENTS_DIR/EXPERIMENT_NAME/DATASET/ (default ./experiments/<timestamp>/).
'nhssynth metadata template DATA' (no config) writes a metadata YAML from a data file for you to
review: declared public categories and ranges cost no privacy budget.
"""

_EPILOG = """\
examples:
  nhssynth pipeline --dataset example --epsilon 1 3 10 --experiment-name sweep --seed 0
  nhssynth dataloader -d mydata -e trial            # reads ./data/mydata.csv (+ mydata.yaml)
  nhssynth model -e trial --arch AIM DPVAE Marginal --epsilon 3 --repeats 2
  nhssynth evaluation -e trial --target death
  nhssynth plotting -e trial
  nhssynth dashboard -e trial --serve --port 8000
  nhssynth config -c quick --seed 1 --save-config
  nhssynth metadata template data/mydata.csv     # writes data/mydata.metadata.yaml to review
"""

_COMMANDS = {
    "dataloader": ("read, validate and split a dataset; fit the encoder",
                   "Read a CSV/Parquet dataset (or the bundled 'example'), read its metadata YAML "
                   "(NAME.yaml / NAME_metadata.yaml beside it, or --metadata) or infer one, "
                   "validate the rows against it, split off a holdout, fit the TableEncoder and "
                   "save metadata.yaml, train.csv, holdout.csv and the encoded matrix."),
    "model": ("fit synthesizers over a hyper-parameter grid",
              "Fit each architecture (AIM, DPVAE, VAE = non-private DP-VAE, Marginal) for every "
              "combination of the list-valued hyper-parameters (e.g. --epsilon 1 3 10) and "
              "every repeat; save the model, synthetic.csv and privacy.json per run."),
    "evaluation": ("score every run: fidelity, utility, privacy",
                   "Run the metric suite (nhssynth.metrics.evaluate) on each run's synthetic data "
                   "against the training rows and the holdout; write evaluation.json/.csv and a "
                   "self-contained report.html per run, and comparison.csv per dataset."),
    "plotting": ("draw the figures",
                 "Per run: marginals, pairwise relationship differences and distance to closest "
                 "record; per dataset: scores against epsilon."),
    "dashboard": ("build (and serve) the experiment's index page",
                  "Write EXPERIMENT/index.html comparing every run (epsilon against fidelity, "
                  "utility and privacy, with links to each report); --serve serves the folder "
                  "on http://HOST:PORT/ until Ctrl-C."),
    "pipeline": ("run dataloader, model, evaluation, plotting and dashboard in order",
                 "All steps in order (see --steps), with one summary at the end."),
    "config": ("run what a config file specifies",
               "Run the steps listed in a YAML config (-c NAME: a path, ./config/NAME.yaml, or "
               "a bundled example config); flags given on the command line override the file."),
}
# which option groups each command takes
_GROUPS = {
    "dataloader": ("dataloader",),
    "model": ("model",),
    "evaluation": ("evaluation",),
    "plotting": ("plotting", "evaluation.max_rows"),
    "dashboard": ("dashboard",),
    "pipeline": ("steps", "dataloader", "model", "evaluation", "plotting", "dashboard"),
    "config": ("steps", "dataloader", "model", "evaluation", "plotting", "dashboard"),
}
_COMMON = ("dataset", "data_dir", "metadata", "experiments_dir", "experiment_name", "seed")
# 'metadata' is not config-driven: it has actions of its own (nhssynth metadata ACTION ...)
_METADATA = ("write a metadata YAML template from a data file, to review and declare",
             "Tools for the metadata YAML. Declared category lists and min/max are public and "
             "cost no privacy budget; undeclared ones are estimated from the rows under "
             "differential privacy. 'template' writes one to start from; "
             "'suggest-constraints' proposes rules to declare, from DP counts.")
_SUGGEST = ("propose constraints to declare, from differentially private counts",
            "Generate candidate rules from the metadata alone (b >= a for numeric and datetime "
            "pairs, positive numbers, a flag that says whether a value is present, a column "
            "missing whenever another is, one-hot groups of 0/1 columns sharing a name prefix), "
            "then measure how many rows of DATA break each with one Gaussian mechanism "
            "(--epsilon, separate from and adding to any model fitted on the same data). Rules "
            "with no more violations than the noise are printed (or written with -o) as a "
            "commented 'constraints:' YAML snippet to review and append to the metadata file. "
            "Nothing is enforced until you declare it. DATA: a CSV/Parquet path, a NAME in "
            "./data, or 'example'.")
_TEMPLATE = ("write a metadata YAML template from a data file",
             "Read DATA (a CSV/Parquet path, a NAME in ./data as --dataset finds it, or 'example'), "
             "infer its metadata and write it as YAML with comments (default: "
             "DATA_STEM.metadata.yaml beside the data). Categorical columns list their observed "
             "categories as 'domain: data' (NOT public, so loading the file as it is spends "
             "budget as before): confirm a list is public (a code list, a data dictionary) and "
             "change its domain to declared. Numeric and datetime columns get no min/max: the "
             "observed range is quoted for information only; add a public, plausible range "
             "instead. Then pass the file with --metadata FILE or "
             "DPVAESynthesizer(metadata=FILE).")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``nhssynth: error: ...`` and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def _fmt_default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        if value and isinstance(value[0], list):
            return " ".join(",".join(map(str, v)) for v in value)
        return " ".join(_fmt_default(v) for v in value)
    return str(value)


def _add_option(group, opt) -> None:
    help_text = opt.help if "default" in opt.help else f"{opt.help} (default: {_fmt_default(opt.default)})"
    aliases = UPSTREAM_ALIASES.get(opt.key, ())
    if aliases:
        help_text += f"; {', '.join(aliases)} as in NHSSynth"
    help_text = help_text.replace("%", "%%")
    flags = (*opt.flags, *aliases)
    if opt.boolean:
        group.add_argument(*flags, dest=opt.key, action=argparse.BooleanOptionalAction,
                           default=argparse.SUPPRESS, help=help_text)
        return
    kwargs: dict[str, Any] = dict(dest=opt.key, default=argparse.SUPPRESS, help=help_text,
                                  type=opt.cli_type, metavar=opt.metavar)
    if opt.nargs is not None:
        kwargs["nargs"] = opt.nargs
    group.add_argument(*flags, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The ``nhssynth`` argument parser (every option defaults to 'not given')."""

    parser = _Parser(prog=PROG, description=_DESCRIPTION, epilog=_EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser,
                                title="commands")
    for name, (short, long) in _COMMANDS.items():
        p = sub.add_parser(name, help=short, description=long)
        run = p.add_argument_group("run")
        run.add_argument("-c", "--config", metavar="NAME", required=name == "config",
                         default=argparse.SUPPRESS if name != "config" else None,
                         help="YAML config: a path, NAME for ./config/NAME.yaml, or a bundled "
                              f"example ({', '.join(packaged_configs())}); flags override it")
        run.add_argument("--save-config", nargs="?", const="", metavar="PATH",
                         default=argparse.SUPPRESS,
                         help="write the fully resolved config (default path: "
                              "EXPERIMENTS_DIR/EXPERIMENT_NAME/config.yaml)")
        run.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS,
                         help="print only errors and the final summary")
        run.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show tracebacks and all library warnings")
        common = p.add_argument_group("data and experiment")
        for key in _COMMON:
            _add_option(common, OPTION_BY_KEY[key])
        for group_name in _GROUPS[name]:
            if group_name in SECTIONS:
                g = p.add_argument_group(group_name)
                for opt in OPTIONS:
                    if opt.section == group_name:
                        _add_option(g, opt)
            else:
                _add_option(p.add_argument_group("other"), OPTION_BY_KEY[group_name])
    _add_metadata_parser(sub)
    parser.set_defaults(_commands=dict(sub.choices))
    return parser


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _add_metadata_parser(sub) -> None:
    """``nhssynth metadata template DATA [-o OUT] [--sep SEP] [--max-categories N] [--force]``."""
    p = sub.add_parser("metadata", help=_METADATA[0], description=_METADATA[1])
    actions = p.add_subparsers(dest="metadata_action", metavar="ACTION", parser_class=_Parser,
                               title="actions", required=True)
    t = actions.add_parser("template", help=_TEMPLATE[0], description=_TEMPLATE[1])
    t.add_argument("data", metavar="DATA",
                   help="data file (CSV/Parquet), a NAME in ./data, or 'example'")
    t.add_argument("-o", "--output", metavar="OUT.yaml", default=None,
                   help="where to write (default: DATA_STEM.metadata.yaml beside the data)")
    t.add_argument("--sep", metavar="SEP", default=None,
                   help="CSV delimiter (default: sniffed among , ; tab |)")
    t.add_argument("--max-categories", metavar="N", type=_non_negative_int,
                   default=DEFAULT_MAX_CATEGORIES,
                   help="list the categories of columns with at most N distinct values; more "
                        "suggests an identifier or free text (default: %(default)s)")
    t.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    t.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show tracebacks and all library warnings")
    g = actions.add_parser("suggest-constraints", help=_SUGGEST[0], description=_SUGGEST[1])
    g.add_argument("data", metavar="DATA",
                   help="data file (CSV/Parquet), a NAME in ./data, or 'example'")
    g.add_argument("-m", "--metadata", metavar="META.yaml", default=None,
                   help="the metadata YAML (default: inferred from DATA, whose schema is then "
                        "read without DP; the bundled example uses its own)")
    g.add_argument("--epsilon", metavar="EPS", type=float, default=1.0,
                   help="privacy budget of the suggestions (default: %(default)s)")
    g.add_argument("--delta", metavar="DELTA", type=float, default=None,
                   help="default: min(1e-5, 0.1 / rows)")
    g.add_argument("--types", metavar="TYPE", nargs="+", choices=SUGGESTED_TYPES, default=None,
                   help="kinds of rule to propose (default: all); fewer candidates, less noise")
    g.add_argument("--max-candidates", metavar="N", type=int, default=200,
                   help="measure at most N candidates (default: %(default)s)")
    g.add_argument("--seed", metavar="N", type=_non_negative_int, default=None,
                   help="seed of the noise (reproducible suggestions)")
    g.add_argument("-o", "--output", metavar="OUT.yaml", default=None,
                   help="write the snippet here (default: print it)")
    g.add_argument("--sep", metavar="SEP", default=None,
                   help="CSV delimiter (default: sniffed among , ; tab |)")
    g.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    g.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show tracebacks and all library warnings")
    p.set_defaults(_metadata_actions=dict(actions.choices))


def _flags_of(parser: argparse.ArgumentParser) -> list[str]:
    return [f for f in parser._option_string_actions if f.startswith("--")]


def _unknown_arguments(commands: dict[str, argparse.ArgumentParser], command: str,
                       extras: list[str]) -> str:
    """The error for unrecognised arguments, with the closest known flag of ``command``."""
    known = _flags_of(commands[command])
    hints = []
    for token in extras:
        if not token.startswith("-") or token == "-":
            continue
        flag = token.split("=", 1)[0]
        elsewhere = [name for name, p in commands.items() if name != command and flag in _flags_of(p)]
        if elsewhere:
            hints.append(f"{flag} is a flag of {', '.join(repr(c) for c in elsewhere)}, not of "
                         f"{command!r}")
            continue
        close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
        if close:
            hints.append(f"did you mean {close[0]}?")
    hint = f"; {'; '.join(hints)}" if hints else ""
    return f"unrecognized arguments: {' '.join(extras)}{hint}"


# --------------------------------------------------------------------------------------------
def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"missing key {text}"
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nhssynth`` console script; returns the exit status."""


    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            commands = args._commands
            if args.command == "metadata":  # the action's parser knows the flags
                commands = {**commands, "metadata": args._metadata_actions[args.metadata_action]}
            sub = commands.get(args.command, parser)
            sub.error(_unknown_arguments(commands, args.command, extras) if args.command in commands
                      else f"unrecognized arguments: {' '.join(extras)}")
    except SystemExit as exc:  # --help, --version or a usage error
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None:
        parser.print_help()
        return 2
    debug = bool(getattr(args, "debug", False))
    try:
        if args.command == "metadata":
            return _run_metadata(args)
        return _run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; finished files are complete, unfinished ones were not written.",
              file=sys.stderr)
        return 130
    except (NhssynthError, ValueError, FileNotFoundError, OSError, yaml.YAMLError, KeyError,
            ImportError) as exc:
        if debug:
            raise
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _run_suggest(args: argparse.Namespace) -> int:
    """``nhssynth metadata suggest-constraints``: DP rule suggestions as a YAML snippet."""
    debug = bool(getattr(args, "debug", False))
    out = Path(args.output) if args.output else None
    if out is not None and out.exists() and not out.is_dir() and not args.force:
        raise FileExistsError(f"{str(out)!r} already exists; pass --force to overwrite it.")
    if out is not None and out.is_dir():
        raise IsADirectoryError(f"{str(out)!r} is a folder; give a file name for the snippet.")
    with warnings.catch_warnings():
        warnings.simplefilter("always" if debug else "ignore")
        md = Metadata.from_yaml(args.metadata) if args.metadata else None
        bundled = args.data == "example" and not Path("example").is_file()
        if bundled:
            df, declared = load_example(return_metadata=True)
            md = md if md is not None else declared
            source = "the bundled example"
        else:
            path = commands._find_dataset({"dataset": args.data, "data_dir": "data"})
            df, source = commands._read_table(path, md, args.sep), str(path)
        result = suggest_constraints(df, md, epsilon=args.epsilon, delta=args.delta,
                                     types=args.types, max_candidates=args.max_candidates,
                                     random_state=args.seed)
    text = result.to_yaml()
    head = (f"nhssynth metadata suggest-constraints: {len(result.suggested)} rule(s) suggested of "
            f"{len(result.candidates)} candidates on {df.shape[0]} rows of {source} (noise sd "
            f"{result.noise_sd:.3g} per count)")
    if out is None:
        print(text, end="", flush=True)
        print(f"{head}\n  {result.statement}", file=sys.stderr, flush=True)
        return 0
    written = write_text(out, text)
    print(f"{head}\n  wrote {written}: review it, then append the rules you know hold to the "
          f"metadata file\n  {result.statement}", flush=True)
    return 0


def _run_metadata(args: argparse.Namespace) -> int:
    """``nhssynth metadata template``: infer the metadata of DATA, write it as a YAML template."""
    if args.metadata_action == "suggest-constraints":
        return _run_suggest(args)
    debug = bool(getattr(args, "debug", False))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always" if debug else "ignore")
        warnings.simplefilter("always", MetadataWarning)
        bundled = args.data == "example" and not Path("example").is_file()
        path = None if bundled else commands._find_dataset({"dataset": args.data, "data_dir": "data"})
        out = (Path(args.output) if args.output else
               Path("example.metadata.yaml") if bundled else default_template_path(path))
        if out.exists() and not out.is_dir() and not args.force:  # before reading the data
            raise FileExistsError(f"{str(out)!r} already exists; pass --force to overwrite it.")
        if bundled:
            df, source = load_example(), "the bundled example (nhssynth.datasets.load_example())"
        else:
            df, source = commands._read_table(path, None, args.sep), str(path)
        inferred = Metadata.from_dataframe(df)
        written = write_metadata_template(df, out, max_categories=args.max_categories,
                                          overwrite=args.force, source=source, metadata=inferred)
    notes = [str(w.message) for w in caught if issubclass(w.category, MetadataWarning)]
    for w in caught:
        if debug and not issubclass(w.category, MetadataWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    todo = summary(template_metadata(df, max_categories=args.max_categories, metadata=inferred))

    def names(cols: list[str]) -> str:
        shown = ", ".join(cols[:8])
        return shown + (f", ... (+{len(cols) - 8})" if len(cols) > 8 else "")

    lines = [f"nhssynth metadata template: wrote {written} ({df.shape[1]} columns, "
             f"{df.shape[0]} rows of {source})"]
    if todo["categories"]:
        lines.append(f"  confirm     {len(todo['categories'])} category list(s) read from the "
                     f"data, domain: data until you declare them: {names(todo['categories'])}")
    if todo["ranges"]:
        lines.append(f"  declare     {len(todo['ranges'])} public min/max range(s) (not the "
                     f"observed ones): {names(todo['ranges'])}")
    if todo["unlisted"]:
        lines.append(f"  not listed  {len(todo['unlisted'])} column(s) with more than "
                     f"{args.max_categories} values (identifiers or free text?): "
                     f"{names(todo['unlisted'])}")
    if todo["ids"]:
        lines.append(f"  identifiers {len(todo['ids'])} column(s) of kind id (not modelled): "
                     f"{names(todo['ids'])}")
    for note in notes[:8]:
        lines.append(f"  note        {note}")
    lines.append(f"  after review: nhssynth dataloader --dataset {args.data} --metadata {written}")
    print("\n".join(lines), flush=True)
    return 0


def _run(args: argparse.Namespace) -> int:

    console = Console(quiet=bool(getattr(args, "quiet", False)),
                      debug=bool(getattr(args, "debug", False)))
    cli = {k: v for k, v in vars(args).items() if k in OPTION_BY_KEY}  # flags actually given
    config_name = getattr(args, "config", None)
    file_spec = load_config_file(find_config(config_name)) if config_name else None
    command = args.command

    def default_name(cfg: dict) -> str | None:
        if command in ("dataloader", "pipeline", "config"):
            return None  # a timestamp
        name = latest_experiment(cfg["experiments_dir"])
        if name is None:
            raise FileNotFoundError(f"no experiment in {cfg['experiments_dir']!r}: run 'nhssynth "
                                    f"dataloader' or 'nhssynth pipeline' first.")
        console.info(f"using the latest experiment: {name} (choose with --experiment-name)")
        return name

    cfg = resolve_config(file_spec, cli, default_name=default_name)
    steps = list(cfg["steps"]) if command in ("pipeline", "config") else [command]
    if "model" in steps:
        expand_runs(cfg["model"], cfg["seed"])  # fail early on a bad grid
    if "dataloader" in steps and cfg["dataset"] is None:
        raise ConfigError("no dataset given: pass --dataset NAME (a file in --data-dir, a path, "
                          "or 'example' for the bundled SUPPORT2 table).")
    root = Path(cfg["experiments_dir"]) / cfg["experiment_name"]
    saved = None
    if hasattr(args, "save_config"):
        saved = Path(args.save_config) if args.save_config else root / "config.yaml"
        write_text(saved, config_to_yaml(cfg))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        if not console.debug:
            warnings.simplefilter("ignore")
        touched = _run_steps(cfg, steps, console)
    _summary(cfg, command, steps, touched, saved, time.perf_counter() - t0, console)
    if "dashboard" in steps and cfg["dashboard"]["serve"]:
        serve(root, cfg["dashboard"]["host"], cfg["dashboard"]["port"],
              announce=lambda m: print(m, flush=True))
    return 0


def _run_steps(cfg: dict, steps: list[str], console) -> list[Path]:

    touched: list[Path] = []
    for step in steps:
        if step == "dataloader":
            info = commands.run_dataloader(cfg, console)
            touched.append(Layout(cfg["experiments_dir"], cfg["experiment_name"], info["key"]).data)
        elif step == "model":
            commands.run_model(cfg, console)
            touched.append(commands._data_dir(cfg))
        elif step == "evaluation":
            commands.run_evaluation(cfg, console)
            touched.append(commands._data_dir(cfg))
        elif step == "plotting":
            commands.run_plotting(cfg, console)
            touched.append(commands._data_dir(cfg))
        elif step == "dashboard":
            root = Path(cfg["experiments_dir"]) / cfg["experiment_name"]
            path = build_index(root)
            console.info(f"dashboard: wrote {path}")
            touched.extend(Layout(root.parent, root.name).dataset_dirs())
    return list(dict.fromkeys(touched))


def _f(x: Any, digits: int = 3) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(v) else ("inf" if math.isinf(v) else f"{v:.{digits}g}" if digits == 0
                                      else f"{v:.{digits}f}")


def _summary(cfg: dict, command: str, steps: list[str], touched: list[Path], saved: Path | None,
             seconds: float, console) -> None:
    """The one-screen summary: where files went, epsilon spent, headline scores."""

    root = Path(cfg["experiments_dir"]) / cfg["experiment_name"]
    lines = ["", f"nhssynth {command}: done in {seconds:.1f} s (seed {cfg['seed']})",
             f"  experiment  {root}"]
    for data_dir in touched:
        marker = data_dir / "dataloader.json"
        if not marker.is_file():
            continue
        info = read_json(marker)
        lines.append(f"  dataset     {data_dir.name}: {info['n_train']} training / "
                     f"{info['n_holdout']} holdout rows, {info['n_columns']} columns -> {data_dir}")
        frame = collect_results(data_dir)
        if frame.empty or not any(s in steps for s in ("model", "evaluation", "plotting", "dashboard")):
            continue
        width = max(24, int(frame["run"].str.len().max()) + 2)
        lines.append(f"  {'run':<{width}}{'eps budget':>11}{'eps spent':>11}{'fidelity':>10}"
                     f"{'quality':>9}{'utility':>9}{'privacy':>9}")
        for row in frame.itertuples(index=False):
            budget = "non-priv" if not math.isfinite(float(row.epsilon_budget)) else _f(row.epsilon_budget, 3)
            spent = "-" if not math.isfinite(float(row.epsilon_spent)) else _f(row.epsilon_spent, 3)
            lines.append(f"  {row.run:<{width}}{budget:>11}{spent:>11}{_f(row.fidelity):>10}"
                         f"{_f(row.quality):>9}{_f(row.utility):>9}{_f(row.privacy):>9}")
        if (data_dir / "comparison.csv").is_file():
            lines.append(f"  per run     synthetic.csv, privacy.json, model/, report.html under "
                         f"{data_dir}/<run>/")
    if (root / "index.html").is_file() and "dashboard" in steps:
        lines.append(f"  dashboard   {root / 'index.html'}  (serve: nhssynth dashboard -e "
                     f"{cfg['experiment_name']} --serve)")
    if saved is not None:
        lines.append(f"  config      {saved}  (reproduce: nhssynth config -c {saved})")
    for note in console.notes[:8]:
        lines.append(f"  note        {note[:160]}")
    if len(console.notes) > 8:
        lines.append(f"  note        ... and {len(console.notes) - 8} more (see each run.json)")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
