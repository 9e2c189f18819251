"""The documentation: its examples run, its docstrings are complete, the site builds.

- Every ``>>>`` example in the pages under docs/ and in the docstrings of pgfast's
  modules runs as a doctest (stdlib doctest, so this needs no Sphinx).
- The pages carry no untested Python: Python examples are doctest blocks, never
  ``code-block:: python``.
- The public names of the modules in DOCUMENTED, and the functions pgfast defines in its
  own namespace, pass numpydoc's checks for a complete docstring (parameters, returns,
  an example, ...); every public module is in DOCUMENTED.
- ``python -m sphinx -W -b html docs`` builds the site with warnings as errors (skipped,
  with the reason, when Sphinx or the theme is not installed).
- docs/make_figures.py turns pytest-benchmark JSON into figures and tables.
"""
import ast
import doctest
import functools
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pgfast
import pgfast.mujoco

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.rst")
               if "_build" not in p.parts and "generated" not in p.parts and p.name != "api.rst")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# Public modules not re-exported by pgfast (docs/conf.py's PUBLIC_MODULES).
PUBLIC_MODULES = ["pgfast.reference", "pgfast.integrations.cleanrl", "pgfast.integrations.sb3",
                  "pgfast.mujoco", "pgfast.distributed", "pgfast.artifacts", "pgfast.export",
                  "pgfast.loggers", "pgfast.video", "pgfast.tuning"]
# It imports Stable-Baselines3 when imported (pgfast does not depend on it): its examples
# and docstrings are checked where SB3 is installed, and skipped, saying so, elsewhere.
SB3 = "pgfast.integrations.sb3"
SB3_MISSING = "pgfast.integrations.sb3 needs Stable-Baselines3: pip install stable-baselines3"

# Modules whose public names have complete numpydoc docstrings; add a module here once
# its docstrings are complete, and the check keeps them so.
DOCUMENTED = ["returns", "gradients", "regulator", "optim", "checkpoints", "problem", "envs",
              "rollout", "policies", "baselines", "estimators", "updates", "training",
              "defaults", "distributed", "reference", "integrations.cleanrl", "integrations.sb3",
              "mujoco", "run", "statistics", "trajectories", "factory", "artifacts", "export",
              "loggers", "video", "tuning"]
# numpydoc.validate codes required of them (see numpydoc's validation docs):
# GL08 no docstring, SS01 no summary, PR01/PR02 parameters missing/unknown,
# RT01 no Returns section, EX01 no Examples section.
REQUIRED_CHECKS = {"GL08", "SS01", "PR01", "PR02", "RT01", "EX01"}


def _need_docs():
    if not PAGES:
        pytest.skip(f"the docs are not beside the tests ({DOCS})")


@pytest.fixture(autouse=True)
def _numpy_print_defaults():
    """Doctest output assumes NumPy's default print options."""
    with np.printoptions(legacy=False):
        yield


# Modules whose examples use an optional extra: {module: {extra: modules it installs}}.
OPTIONAL_EXAMPLES = {"pgfast.export": {"onnx": ("onnx", "onnxruntime")},
                     "pgfast.loggers": {"tensorboard": ("tensorboardX",)},
                     "pgfast.video": {"video": ("imageio", "pygame")},
                     "pgfast.tuning": {"tune": ("optuna",)}}

# Examples that start a local Ray session (pip install "pgfast[ray]").
NEEDS_RAY = {"pgfast.distributed", "scaling.rst"}


def _run_doctests(tests, tmp_path, monkeypatch, needs_ray=False):
    # Examples that write files write them here; and Ray's workers put the driver's
    # working folder first on their path, where the source tree (no compiled kernels)
    # would shadow the installed pgfast.
    monkeypatch.chdir(tmp_path)
    ray = None
    if needs_ray:
        ray = pytest.importorskip("ray", reason='the example needs Ray: pip install '
                                                '"pgfast[ray]"')
        ray.shutdown()   # the example starts its own session
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    try:
        for test in tests:
            runner.run(test)
    finally:
        if ray is not None:
            ray.shutdown()
    return runner.summarize(verbose=False)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)) if PAGES else "")
def test_page_examples_run(page, tmp_path, monkeypatch):
    if page.name == "mujoco.rst" and not pgfast.mujoco.available():
        pytest.skip(f"the MuJoCo guide's examples need MuJoCo: {pgfast.mujoco.INSTALL_HINT}")
    test = doctest.DocTestParser().get_doctest(page.read_text(), {}, page.name, str(page), 0)
    results = _run_doctests([test], tmp_path, monkeypatch, needs_ray=page.name in NEEDS_RAY)
    assert results.failed == 0, f"{page.name}: {results.failed} of {results.attempted} failed"


def test_build_options_agree_with_pyproject():
    """install.rst and the README name each build variable with the value that changes
    the build: never its default (pyproject.toml's [tool.scikit-build.cmake.define])."""
    _need_docs()
    tomllib = pytest.importorskip("tomllib", reason="tomllib (Python 3.11+) reads pyproject.toml")

    defines = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["scikit-build"][
        "cmake"]["define"]
    defaults = {name: spec["default"] for name, spec in defines.items()}
    assert defaults["PGFAST_NATIVE"] == "OFF"
    for page in (DOCS / "install.rst", ROOT / "README.md"):
        named = re.findall(r"(PGFAST_[A-Z_]+)=(\w+) pip install", page.read_text())
        assert {name for name, _ in named} == set(defaults), page.name
        assert [(n, v) for n, v in named if v == defaults[n]] == [], page.name


def test_pages_have_no_untested_python():
    """Python examples are >>> doctest blocks; a ``code-block:: python`` is allowed only
    right after a ``.. untested: <why>`` comment (it needs a library the tests lack)."""
    _need_docs()
    block = re.compile(r"^\s*\.\. (code-block|code|sourcecode):: (python|pycon|py)\b")
    offenders = []
    for page in PAGES:
        lines = [line for line in page.read_text().splitlines() if line.strip()]
        offenders += [f"{page.name}: {line.strip()}" for i, line in enumerate(lines)
                      if block.match(line)
                      and not (i and re.match(r"\.\. untested: \S", lines[i - 1].strip()))]
    assert offenders == [], "write Python examples as >>> doctest blocks"


def _public_modules():
    names = {getattr(pgfast, n).__module__ for n in pgfast.__all__
             if hasattr(getattr(pgfast, n), "__module__")}
    return sorted(names | {"pgfast", *PUBLIC_MODULES})


def _assigned(path, name):
    """The literal assigned to `name` at the top level of a Python file, read without
    running it (docs/conf.py writes files; pgfast.integrations.sb3 imports SB3)."""
    for node in ast.parse(Path(path).read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name
                                                for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"{path} assigns no {name}")


def _all_names(module):
    return _assigned(importlib.util.find_spec(module).origin, "__all__")


def test_public_modules_match_the_docs():
    assert _assigned(DOCS / "conf.py", "PUBLIC_MODULES") == PUBLIC_MODULES


def test_every_public_module_is_documented():
    """Every public name is checked by test_public_docstrings_are_complete: pgfast's own
    functions there, every other public module through DOCUMENTED."""
    undocumented = set(_public_modules()) - {"pgfast"} - {f"pgfast.{m}" for m in DOCUMENTED}
    assert undocumented == set()


@pytest.mark.parametrize("module", _public_modules())
def test_docstring_examples_run(module, tmp_path, monkeypatch):
    if module == SB3:
        pytest.importorskip("stable_baselines3", reason=SB3_MISSING)
    if module == "pgfast.mujoco" and not pgfast.mujoco.available():
        pytest.skip(f"the examples make MuJoCo envs: {pgfast.mujoco.INSTALL_HINT}")
    for extra, needs in OPTIONAL_EXAMPLES.get(module, {}).items():
        if not all(importlib.util.find_spec(m) for m in needs):
            pytest.skip(f"the examples need {' and '.join(needs)}: pip install "
                        f"'pgfast[{extra}]'")
    mod = importlib.import_module(module)
    tests = [t for t in doctest.DocTestFinder(exclude_empty=True).find(mod, module)
             if t.examples]
    results = _run_doctests(tests, tmp_path, monkeypatch, needs_ray=module in NEEDS_RAY)
    assert results.failed == 0, f"{module}: {results.failed} of {results.attempted} failed"


def _documented_modules():
    """(module name, public names): the functions pgfast defines in its own namespace
    (the rest of pgfast.__all__ is checked in the module that defines it), then the
    DOCUMENTED modules' __all__; None where the module cannot be imported here."""
    yield "pgfast", [n for n in pgfast.__all__
                     if getattr(getattr(pgfast, n), "__module__", "") == "pgfast"]
    for short_name in DOCUMENTED:
        module_name = f"pgfast.{short_name}"
        if module_name == SB3 and importlib.util.find_spec("stable_baselines3") is None:
            yield module_name, None
        else:
            yield module_name, importlib.import_module(module_name).__all__


def _documented_names():
    """(dotted name, required checks): the names of _documented_modules, and the public
    methods and properties their classes define (no example needed); checks None for
    a module that cannot be imported here (its test skips)."""
    for module_name, names in _documented_modules():
        if names is None:
            yield module_name, None
            continue
        module = importlib.import_module(module_name)
        for name in names:
            obj = getattr(module, name)
            if not callable(obj):
                continue
            yield f"{module_name}.{name}", REQUIRED_CHECKS
            if isinstance(obj, type):
                for member, value in vars(obj).items():
                    if not member.startswith("_") and (callable(value) or isinstance(
                            value, (property, functools.cached_property))):
                        yield f"{module_name}.{name}.{member}", REQUIRED_CHECKS - {"EX01"}


DOCUMENTED_NAMES = dict(_documented_names())


@pytest.mark.parametrize("name", sorted(DOCUMENTED_NAMES))
def test_public_docstrings_are_complete(name):
    checks = DOCUMENTED_NAMES[name]
    if checks is None:
        pytest.skip(SB3_MISSING)
    validate = pytest.importorskip("numpydoc.validate", reason="numpydoc is not installed "
                                   "(pip install '.[test]' installs it)")
    errors = [(code, msg) for code, msg in validate.validate(name)["errors"] if code in checks]
    assert errors == []


def test_sphinx_builds_with_warnings_as_errors(tmp_path):
    _need_docs()
    for module, why in (("sphinx", "Sphinx"), ("pydata_sphinx_theme", "pydata-sphinx-theme"),
                        ("numpydoc", "numpydoc")):
        pytest.importorskip(module, reason=f"{why} is not installed; pip install '.[test]' "
                                           "installs what the docs build needs")
    # No benchmark JSON: the page says so (test_make_figures_* cover the figures).
    env = {**os.environ, "PGFAST_BENCHMARK_JSON": str(tmp_path / "no-benchmarks.json")}
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    html = tmp_path / "html"
    assert (html / "index.html").is_file()
    # Every public name has its reference page.
    names = [f"pgfast.{n}" for n in pgfast.__all__]
    for module in PUBLIC_MODULES:
        names += [f"{module}.{n}" for n in _all_names(module)]
    missing = [n for n in names if not (html / "generated" / f"{n}.html").is_file()]
    assert missing == []
    # The site reads offline: MathJax is served from the site itself, and nothing
    # (script, stylesheet, font) is loaded from another host.
    pages = {p: p.read_text(encoding="utf-8") for p in html.rglob("*.html")}
    assert (html / "_static" / "tex-svg-full.js").stat().st_size > 100_000
    assert '_static/tex-svg-full.js' in pages[html / "theory" / "estimators.html"]
    remote = re.compile(r'<(script|link)[^>]*(src|href)="(https?:)?//')
    assert [p.name for p, text in pages.items() if remote.search(text)] == []
    # Commands keep ASCII hyphens: no option turned into an en dash ("–policy").
    assert [p.name for p, text in pages.items() if re.search("\u2013[a-z]", text)] == []


def _benchmark_json(path):
    """A small pytest-benchmark JSON: two groups of speed cases, one training group."""
    def case(name, group, median, module="bench_returns", extra=None):
        return {"name": name, "fullname": f"benchmarks/{module}.py::{name}", "group": group,
                "stats": {"median": median, "mean": median}, "extra_info": extra or {}}
    data = {"machine_info": {"python_version": "3.11", "cpu": {"brand_raw": "Test CPU"}},
            "datetime": "2026-12-02T10:00:00", "commit_info": {"id": "abcdef1234567"},
            "benchmarks": [
                case("test_gae_pgfast", "gae", 1e-4), case("test_gae_numpy_loop", "gae", 5e-3),
                case("test_gae_np_copy_floor", "gae", 5e-5),
                case("test_native_vector_env", "step", 2e-3, "bench_envs"),
                case("test_gymnasium_sync_vector_env", "step", 8e-2, "bench_envs"),
                case("test_cartpole_solve[trpo-0]", "train CartPole trpo", 3.0, "bench_training",
                     {"eval": 500.0, "solved": True, "steps": 300, "cpu_s": 3.0, "wall_s": 3.1,
                      "curve": {"steps": [100, 200, 300], "mean_return": [20.0, 80.0, 500.0]}}),
            ]}
    path.write_text(json.dumps(data))
    return path


def _make_figures():
    sys.path.insert(0, str(DOCS))
    try:
        return importlib.import_module("make_figures")
    finally:
        sys.path.remove(str(DOCS))


def test_make_figures_ratios_and_tables(tmp_path):
    _need_docs()
    make_figures = _make_figures()
    records, machine = make_figures.load([_benchmark_json(tmp_path / "b.json")])
    groups = make_figures.speed_groups(records)
    assert set(groups) == {"bench_returns", "bench_envs"}
    ratios = {n: r for n, r, _ in make_figures.relative_times(groups["bench_returns"]["gae"])}
    assert ratios == pytest.approx({"test_gae_pgfast": 1.0, "test_gae_numpy_loop": 50.0,
                                    "test_gae_np_copy_floor": 0.5})
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the plot extra)")
    page = make_figures.write_benchmarks_page([tmp_path / "b.json"], tmp_path / "out")
    text = page.read_text()
    assert "50×" in text and "Test CPU" in text and "abcdef1234" in text
    assert "``pgfast train CartPole trpo``" in text   # a training run's command, literal
    for image in ("speed-bench_returns.png", "speed-bench_envs.png", "learning-curves.png"):
        assert (tmp_path / "out" / image).stat().st_size > 1000
        assert f"/_generated/{image}" in text


def test_make_figures_without_results_writes_a_note(tmp_path):
    _need_docs()
    page = _make_figures().write_benchmarks_page([tmp_path / "absent.json"], tmp_path)
    assert "no benchmark results" in page.read_text()


def test_make_figures_rejects_other_json(tmp_path):
    _need_docs()
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="not pytest-benchmark JSON"):
        _make_figures().load([bad])


def test_make_figures_command_line(tmp_path, capsys):
    _need_docs()
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the plot extra)")
    make_figures = _make_figures()
    make_figures.main([str(_benchmark_json(tmp_path / "b.json")), "--out", str(tmp_path / "o")])
    assert "benchmarks.inc" in capsys.readouterr().out
    assert (tmp_path / "o" / "speed-bench_envs.png").is_file()
    with pytest.raises(SystemExit):   # argparse's error for a missing file
        make_figures.main([str(tmp_path / "missing.json")])
