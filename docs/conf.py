"""Sphinx configuration of the nhssynth documentation site (``make docs``).

CI builds it with ``sphinx-build -W --keep-going``: every warning is an error.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout, also when nhssynth is not installed editable
os.environ.setdefault("MPLBACKEND", "Agg")

import nhssynth  # noqa: E402

project = "nhssynth"
author = "The nhssynth developers"
copyright = "The nhssynth developers"  # noqa: A001 - Sphinx's name
release = nhssynth.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip"]

# -- autodoc / autosummary ---------------------------------------------------------------
autosummary_generate = True            # stubs under docs/generated/ (not committed)
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"             # types are in the numpydoc Parameters sections
autodoc_class_signature = "mixed"

# -- numpydoc ------------------------------------------------------------------------------
numpydoc_show_class_members = False    # the class template lists members itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# Docstrings are validated (a failed check is a warning, so an error under -W): every check
# of numpydoc's format rules is on.  Left out: the checks that ask for more content than a
# docstring has to give (extended summary, examples, see also, every parameter and return
# value described).
numpydoc_validation_checks = {
    "all",
    "ES01",  # no extended summary
    "EX01",  # no Examples section
    "SA01",  # no See Also section
    "PR01",  # a parameter not documented
    "PR07",  # a parameter without description
    "RT01",  # no Returns section
    "RT03",  # a return value without description
}

# -- MyST (the Markdown pages in docs/) --------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# -- sphinx-gallery (examples/*.py) --------------------------------------------------------
# The examples train models (minutes on CPU); tests/test_examples.py runs them. The gallery
# shows their code without executing it, which keeps `make docs` fast.
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "plot_gallery": "False",
    "write_computation_times": False,   # nothing is executed, so no timings page
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "remove_config_comments": True,
}

# -- HTML ----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"nhssynth {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []
html_show_sourcelink = False


def _skip_member(app, what, name, obj, skip, options):
    """Document nhssynth's own methods only.

    The class template asks for inherited members (so a synthesizer shows the ``fit`` and
    ``sample`` of its nhssynth base class); this leaves out what comes from scikit-learn or
    builtins (``get_params``, ``set_output``...) and the ``set_*_request`` methods that
    scikit-learn generates for metadata routing.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    if what in ("class", "exception"):
        func = obj.fget if isinstance(obj, property) else getattr(obj, "__func__", obj)
        module = getattr(func, "__module__", None) if callable(func) else None
        if module is not None and not module.startswith("nhssynth"):
            return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
