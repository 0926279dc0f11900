"""The package's shape: no import cycles, layers that only depend downwards, no imports hidden
inside functions to dodge a cycle."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nhssynth"

# Which top-level parts of the package may import which (the data flow is the folder structure).
# A part not listed under another's allowed set must not be imported by it.
LAYERS = {
    "_version": set(),
    "_rng": set(),
    "exceptions": set(),
    "constraints": {"exceptions"},
    "metadata": {"exceptions", "constraints"},
    "base": set(),
    "_values": {"metadata"},
    "privacy": {"exceptions", "metadata", "base"},
    "encoders": {"exceptions", "metadata", "base", "privacy", "_values", "table_source"},
    "calibration": {"exceptions", "metadata", "base", "privacy", "encoders", "_values"},
    "io": {"exceptions", "metadata", "base", "constraints"},
    "synthesizers": {"exceptions", "metadata", "base", "privacy", "encoders", "calibration", "io",
                     "_values", "_rng", "constraints", "table_source", "sampling_io"},
    "pipeline": {"encoders", "privacy", "base", "exceptions", "metadata", "sampling_io"},
    "datasets": {"metadata"},
    "metrics": {"exceptions", "metadata", "base", "_values", "synthesizers", "constraints"},
    "reporting": {"_version", "metrics", "metadata", "exceptions"},
    "utils": {"exceptions", "base", "metadata"},
    "cli": {"_version", "exceptions", "metadata", "datasets", "encoders", "synthesizers", "io",
            "metrics", "reporting", "privacy", "constraints", "suggest"},
    "__init__": None,  # the public re-exports may import anything
    "__main__": {"cli"},
    "transformers": {"encoders"},  # the public import path of the column encoders
    "sampling_io": {"_rng", "table_source", "base"},
    # tables larger than memory: Parquet/CSV/chunks read by column or batch (out-of-core fits)
    "table_source": {"exceptions", "metadata"},  # sample_to_parquet: any generator, duck-typed
    # suggest_constraints: candidates from the metadata, DP violation counts in the ledger
    "suggest": {"_rng", "exceptions", "metadata", "constraints", "privacy"},
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """Absolute nhssynth modules named by an ``from ... import ...`` statement."""
    if node.level:
        base = module.split(".")
        if not is_package:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("nhssynth"):
        return []
    names = [f"{target}.{a.name}" for a in node.names]
    return [target] + names


def _graph():
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules[name] = (path, tree)
    edges: dict[str, set[str]] = {m: set() for m in modules}
    nested: list[tuple[str, int, str]] = []
    for name, (path, tree) in modules.items():
        is_package = path.name == "__init__.py"
        top_level = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                targets = _resolve(name, is_package, node)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("nhssynth")]
            else:
                continue
            targets = [t for t in targets if t in modules and t != name]
            edges[name].update(targets)
            if targets and id(node) not in top_level:
                nested.append((name, node.lineno, ", ".join(sorted(targets))))
    return modules, edges, nested


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _edges_without_package_inits(edges):
    # ``import nhssynth.x.y`` also runs the package ``__init__`` files, but they only re-export:
    # the cycles that matter are between the modules that hold code
    return {m: {t for t in ts if not (t.count(".") < m.count(".") and m.startswith(t + "."))}
            for m, ts in edges.items()}


def test_no_import_cycle_between_modules():
    _, edges, _ = _graph()
    assert _cycles(_edges_without_package_inits(edges)) == []


def test_no_import_inside_a_function():
    _, _, nested = _graph()
    assert nested == [], "imports of nhssynth modules inside functions (hoist them, or break " \
                         "the cycle they dodge): " + "; ".join(f"{m}:{ln} -> {t}" for m, ln, t in nested)


def test_layers_only_depend_downwards():
    _, edges, _ = _graph()
    bad = []
    for module, targets in edges.items():
        part = _part(module)
        allowed = LAYERS.get(part, "missing")
        if allowed == "missing":
            bad.append(f"{module}: its part {part!r} has no entry in LAYERS")
            continue
        if allowed is None:
            continue
        for target in targets:
            other = _part(target)
            if other != part and other not in allowed:
                bad.append(f"{module} imports {target}")
    assert bad == []


def test_parts_form_no_cycle():
    _, edges, _ = _graph()
    parts: dict[str, set[str]] = {}
    for module, targets in edges.items():
        if _part(module) in ("__init__", "__main__"):
            continue
        parts.setdefault(_part(module), set()).update(
            _part(t) for t in targets if _part(t) not in (_part(module), "__init__"))
    assert _cycles(parts) == []


def test_every_public_estimator_declares_its_parameter_constraints():
    """Validation goes through scikit-learn's machinery: every parameter of every public
    estimator (generators, encoders) has a declared constraint."""
    import inspect

    import nhssynth
    import nhssynth.encoders as encoders
    from sklearn.base import BaseEstimator

    classes = {getattr(m, n) for m in (nhssynth, encoders) for n in dir(m)
               if inspect.isclass(getattr(m, n)) and issubclass(getattr(m, n), BaseEstimator)
               and not getattr(m, n).__name__.startswith("_")}
    classes = {c for c in classes if c.__module__.startswith("nhssynth")
               and c.__name__ not in ("SynthesisPipeline",)}  # a Pipeline: sklearn's own
    assert len(classes) >= 8
    for cls in classes:
        declared = set(getattr(cls, "_parameter_constraints", {}))
        params = set(cls._get_param_names())
        assert params <= declared, f"{cls.__name__}: no constraint for {sorted(params - declared)}"
