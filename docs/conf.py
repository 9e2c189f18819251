"""Sphinx configuration for pgfast's documentation.

Build (from the repository root, with the package installed):

    python -m sphinx -W -b html docs docs/_build/html

The API reference documents the *installed* package: the source tree's ``pgfast/``
has no compiled kernels, so the repository root is taken off ``sys.path`` below.
At configuration time this file writes three things that are not committed:

- ``api.rst``: one autosummary table per module, listing every name in
  ``pgfast.__all__`` under the module that owns it, so a new public name appears
  in the reference as soon as it is exported (autosummary then writes one page
  per name into ``generated/``);
- ``_generated/cli.inc``: ``pgfast <command> --help`` of every command, as the
  installed CLI prints it;
- ``_generated/benchmarks.inc``: the benchmark tables and figures, made by
  ``make_figures.py`` from pytest-benchmark JSON when there is some (see
  ``benchmarks.rst``), or a note saying how to produce them when there is none.
"""
import importlib
import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT]
sys.path.insert(0, str(DOCS))   # make_figures

try:
    import pgfast
except ImportError as exc:
    raise RuntimeError("docs: install pgfast first (pip install '.[docs]'); the API "
                       f"reference is read from the installed package ({exc})") from exc

import make_figures  # noqa: E402
from sphinx.ext.autodoc.mock import mock  # noqa: E402

project = "pgfast"
author = "the pgfast developers"
copyright = "the pgfast developers"
release = version = pgfast.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_generated", "README.md"]
source_suffix = {".rst": "restructuredtext"}

html_theme = "pydata_sphinx_theme"
html_title = f"pgfast {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
# Commands keep their two hyphens: no "--" turned into an en dash, no curly quotes.
smartquotes = False


def _local_mathjax():
    """MathJax 3 as one file that needs nothing else (tex-svg-full.js: every TeX
    extension, glyphs drawn as SVG paths, no font files), from the django-static-mathjax
    package, which installs MathJax's files and nothing of Django. Copied into the
    site's _static folder, so the formulas render offline. (imgmath would need LaTeX
    and dvisvgm, which pip cannot install.)"""
    spec = importlib.util.find_spec("mathjax")
    folders = list(spec.submodule_search_locations or []) if spec else []
    script = Path(folders[0] if folders else "") / "static" / "mathjax" / "es5" / "tex-svg-full.js"
    if not script.is_file():
        raise RuntimeError("docs: the formulas need a local MathJax: pip install "
                           "django-static-mathjax (in the docs and test extras)")
    return script


html_static_path = [str(_local_mathjax())]
mathjax_path = "tex-svg-full.js"   # relative to _static

autosummary_generate = True
autodoc_default_options = {"members": True, "undoc-members": False}
autodoc_typehints = "none"          # numpydoc's Parameters sections carry the types
numpydoc_show_class_members = False  # members are listed by autodoc on the class page
numpydoc_attributes_as_param_list = False
default_role = "py:obj"
nitpicky = False


# --- the API page, from pgfast.__all__ ----------------------------------------------------

def _module_title(module_name):
    doc = importlib.import_module(module_name).__doc__ or module_name
    first = doc.strip().splitlines()[0].rstrip(".")
    return re.sub(r"\s+\([^()]*\)$", "", first)   # drop a closing "(kernels in ...)"


def write_api_page():
    """docs/api.rst: pgfast.__all__ grouped by the module that owns each name."""
    groups = {}
    for name in pgfast.__all__:
        obj = getattr(pgfast, name)
        home = obj.__name__ if name == "envs" else getattr(obj, "__module__", "pgfast")
        groups.setdefault(home, []).append(name)
    lines = [
        ".. This page is written by conf.py from pgfast.__all__; edit conf.py, not this file.",
        "",
        "API reference",
        "=============",
        "",
        "Every public name, importable as ``pgfast.<name>``, grouped by the module that",
        "owns it, then the public modules whose names stay in their own namespace",
        "(``pgfast.reference``, ``pgfast.integrations``, ``pgfast.mujoco``,",
        "``pgfast.distributed``). Each page gives the formula the function computes, its",
        "parameters, what it returns and raises, and an example. ``pgfast.integrations.sb3``",
        "needs Stable-Baselines3 (:doc:`guides/frameworks`); ``pgfast.mujoco``'s envs need",
        "MuJoCo (``pip install \"pgfast[mujoco]\"``); ``pgfast.distributed`` needs Ray",
        "(``pip install \"pgfast[ray]\"``) when used and is described in :doc:`guides/scaling`.",
        "",
        ".. currentmodule:: pgfast",
        "",
    ]
    for module_name in sorted(groups, key=_layout_order):
        title = f"{_module_title(module_name)} (``{module_name}``)"
        lines += [title, "-" * len(title), "", ".. autosummary::",
                  "   :toctree: generated", ""]
        lines += [f"   {name}" for name in groups[module_name]]
        lines.append("")
    for module_name in PUBLIC_MODULES:
        with mock(autodoc_mock_imports):
            module = importlib.import_module(module_name)
        title = f"{_module_title(module_name)} (``{module_name}``)"
        lines += [title, "-" * len(title), "", f".. currentmodule:: {module_name}", "",
                  ".. autosummary::", "   :toctree: generated", ""]
        lines += [f"   {name}" for name in module.__all__]
        lines.append("")
    text = "\n".join(lines)
    page = DOCS / "api.rst"
    if not page.exists() or page.read_text() != text:
        page.write_text(text)


#: Public modules whose names are not re-exported by ``pgfast``: documented under their
#: own names (tests/test_docs.py has the same list).
PUBLIC_MODULES = ["pgfast.reference", "pgfast.integrations.cleanrl", "pgfast.integrations.sb3",
                  "pgfast.mujoco", "pgfast.distributed", "pgfast.artifacts", "pgfast.export",
                  "pgfast.loggers", "pgfast.video", "pgfast.tuning"]
#: pgfast.integrations.sb3 imports Stable-Baselines3 when imported (pgfast.distributed
#: imports Ray only on use): without SB3, autodoc reads it against Sphinx's stand-in.
autodoc_mock_imports = ([] if importlib.util.find_spec("stable_baselines3")
                        else ["stable_baselines3"])


def _layout_order(module_name):
    """The order of pgfast's layout table (its __init__ docstring), then by name."""
    table = pgfast.__doc__ or ""
    short = module_name.split(".")[-1]
    pos = table.find(f"``{short}``")
    return (pos if pos >= 0 else len(table), module_name)


def write_cli_help(out_dir):
    """_generated/cli.inc: ``pgfast <command> --help`` for every command, as printed."""
    import argparse
    import contextlib
    import io

    from pgfast.cli import build_parser

    os.environ["COLUMNS"] = "88"   # argparse wraps to the terminal width
    parser = build_parser()
    commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    lines = []
    for name in (commands[0].choices if commands else ()):
        text = io.StringIO()
        with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
            parser.parse_args([name, "--help"])
        lines += [f"``pgfast {name}``", "", ".. code-block:: text", ""]
        lines += [f"   {line}".rstrip() for line in text.getvalue().splitlines()] + [""]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "cli.inc").write_text("\n".join(lines) + "\n")


shutil.rmtree(DOCS / "generated", ignore_errors=True)   # no stale page of a removed name
write_api_page()
write_cli_help(DOCS / "_generated")
# Your own runs in docs/_data/, else the measured run kept with the docs (docs/results/).
make_figures.write_benchmarks_page(
    os.environ["PGFAST_BENCHMARK_JSON"].split(os.pathsep)
    if os.environ.get("PGFAST_BENCHMARK_JSON")
    else sorted((DOCS / "_data").glob("*.json")) or sorted((DOCS / "results").glob("*.json")),
    DOCS / "_generated")


# --- signatures of the compiled kernels ------------------------------------------------------

def _cython_signature(app, what, name, obj, options, signature, return_annotation):
    """The Python signature of a compiled function or method, from its
    ``__signature__`` (Cython's binding=True), rather than the one embedded in its
    docstring (embedsignature): that one has C types and ``self``, and a fused
    function's is its dispatcher's, ``(signatures, args, kwargs, defaults, ...)``.
    A compiled class keeps its embedded constructor signature, C types and all:
    the constructor a Cython subclass calls."""
    if type(obj).__name__ not in ("fused_cython_function", "cython_function_or_method"):
        return None
    import inspect

    params = list(inspect.signature(obj).parameters.values())
    if what == "method" and params and params[0].name == "self":
        params = params[1:]
    return f"({', '.join(str(p) for p in params)})", return_annotation


def _no_stand_in_signature(app, what, name, obj, options, signature, return_annotation):
    """No signature for a class built on a library that autodoc_mock_imports stands in
    for: it would be the stand-in's ``(*args, **kwargs)``; the Parameters section
    gives the real arguments."""
    if what == "class" and any(getattr(base, "__sphinx_mock__", False)
                               for base in obj.__mro__[1:]):
        return "", return_annotation
    return None


def setup(app):
    # before numpydoc, whose handler returns the signature embedded in the docstring
    app.connect("autodoc-process-signature", _cython_signature, priority=400)
    app.connect("autodoc-process-signature", _no_stand_in_signature, priority=400)
