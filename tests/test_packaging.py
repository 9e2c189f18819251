"""What pgfast ships: the sdist's file list, the installed package's files.

The sdist is built with scikit-build-core's PEP 517 hook from a copy of the
source tree (a few seconds: no compilation), with decoys beside the sources
that must stay out of it.
"""
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("src", "pgfast", "tests", "benchmarks", "examples", "docs")
DOCS_BUILT = ("_build", "_generated", "generated", "api.rst", "_data")   # written by docs/conf.py
TOP_FILES = ("pyproject.toml", "CMakeLists.txt", "README.md", "LICENSE", "CHANGELOG.md")
BUILT = ("*.so", "*.pyd", "*.pyc", "__pycache__")

needs_source_tree = pytest.mark.skipif(
    not (ROOT / "pyproject.toml").is_file(), reason="needs pgfast's source tree (pyproject.toml)")


def source_files(root):
    """The files the sdist should hold, relative to root: the top-level files
    and everything under the source folders except compiled output."""
    files = {name for name in TOP_FILES if (root / name).is_file()}
    for folder in SOURCE_DIRS:
        for path in (root / folder).rglob("*"):
            parts = path.relative_to(root).parts
            compiled = "__pycache__" in parts or path.suffix in (".so", ".pyd", ".pyc")
            docs_build = parts[0] == "docs" and parts[1] in DOCS_BUILT
            if path.is_file() and not compiled and not docs_build:
                files.add("/".join(parts))
    return files


@pytest.fixture(scope="module")
def sdist_names(tmp_path_factory):
    pytest.importorskip("scikit_build_core", reason="building the sdist needs scikit-build-core")
    tree = tmp_path_factory.mktemp("tree") / "pgfast"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "runs", ".*cache", ".benchmarks", ".hypothesis", *BUILT))
    expected = source_files(tree) | {"PKG-INFO"}
    # What a developer's checkout holds after the README's commands and a training run.
    for decoy in (".venv/lib/site.py", "venv2/bin/python", "build/cp311/CMakeCache.txt",
                  "dist/old.tar.gz", "runs/cartpole/checkpoint.npz",
                  "pgfast/_returns.cpython-311.so",
                  "pgfast/__pycache__/cli.cpython-311.pyc", "src/_returns.c", "notes.txt",
                  "docs/_build/html/index.html", "docs/api.rst"):
        (tree / decoy).parent.mkdir(parents=True, exist_ok=True)
        (tree / decoy).write_text("decoy")
    out = tmp_path_factory.mktemp("sdist")
    hook = f"from scikit_build_core.build import build_sdist; print(build_sdist({str(out)!r}))"
    result = subprocess.run([sys.executable, "-c", hook], cwd=tree, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    name = result.stdout.strip().splitlines()[-1]
    with tarfile.open(out / name) as sdist:
        top, *_ = name.rsplit(".tar.gz", 1)
        return {m.name.removeprefix(top + "/") for m in sdist.getmembers() if m.isfile()}, expected


@needs_source_tree
def test_sdist_holds_the_sources_and_nothing_else(sdist_names):
    names, expected = sdist_names
    assert names == expected


@needs_source_tree
def test_sdist_holds_what_a_build_needs(sdist_names):
    names, _ = sdist_names
    for required in TOP_FILES:
        assert required in names
    for kernel in ROOT.glob("src/*.pyx"):
        assert f"src/{kernel.name}" in names
    assert "pgfast/__init__.py" in names and "pgfast/py.typed" in names


# ---------------------------------------------------------------------------
# Which kernels load (pgfast/_loader.py)
# ---------------------------------------------------------------------------

def run_python(code, cwd, **env):
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env})


@needs_source_tree
def test_import_from_the_repository_root():
    """Where the README installs, `import pgfast` finds the source folder first. An editable
    install resolves the compiled kernels from there; otherwise one line says what to do."""
    import pgfast

    result = run_python("import pgfast; print(pgfast._returns.__file__)", cwd=ROOT)
    editable = Path(pgfast.__file__).resolve().parent == ROOT / "pgfast"
    if editable:
        assert result.returncode == 0, result.stderr
    else:
        last = result.stderr.strip().splitlines()[-1]
        assert result.returncode != 0 and "circular" not in result.stderr
        assert last.startswith("ImportError: pgfast: no compiled kernels")
        assert "pip install -e ." in last


def test_kernels_for_this_cpu_are_loaded():
    import pgfast
    from pgfast import _cpu

    folder = Path(pgfast._cyutility.__file__).parent
    levels = [(folder / sub, getattr(_cpu, check)()) for _, sub, check in _loader().LEVELS]
    if not any(path.is_dir() for path, _ in levels):
        pytest.skip("this build has one set of kernels (PGFAST_NATIVE=ON, or not x86-64)")
    if os.environ.get("PGFAST_KERNELS", "").lower() == "baseline":
        want = folder
    else:   # the highest level built and run by this CPU
        want = next((path for path, runs in levels if path.is_dir() and runs), folder)
    for name in ("_returns", "_policies", "_envs", "_rollout"):
        kernel = importlib.import_module(f"pgfast.{name}")
        assert Path(kernel.__file__).parent == want


def _loader():
    from pgfast import _loader
    return _loader


BITS = """
import hashlib, numpy as np, pgfast
rng = np.random.default_rng(0)
r, v, nv = rng.normal(size=(3, 300, 8))
term = rng.random((300, 8)) < 0.05
out = [pgfast.gae(r, v, nv, 0.99, 0.95, term), pgfast.reward_to_go(r, 0.99, term)]
for policy in (pgfast.LinearSoftmax(4, 3), pgfast.MLPGaussian(4, 2, hidden=(16, 16))):
    theta = policy.init(1) + 0.1 * rng.normal(size=policy.n_params)
    obs = rng.normal(size=(64, 4))
    actions, logp = policy.sample(theta, obs, 2)
    out += [actions, logp, policy.grad_log_prob(theta, obs, actions),
            policy.fisher_vector_product(theta, obs, np.ones(policy.n_params))]
policy = pgfast.LinearSoftmax(4, 2)
ro = pgfast.rollout(pgfast.make_vec("CartPole-v1", num_envs=16), policy, policy.init(3), 200, 3)
out += [ro.observations, ro.actions, ro.rewards, ro.log_probs]
print(pgfast._returns.__file__)
print(hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in out)).hexdigest())
"""


@pytest.mark.parametrize("level", ["x86-64-v3", "x86-64-v4"])
def test_baseline_and_vector_kernels_return_the_same_bits(tmp_path, level):
    import pgfast
    from pgfast import _cpu

    _, sub, check = next(entry for entry in _loader().LEVELS if entry[0] == level)
    if not (Path(pgfast._cyutility.__file__).parent / sub).is_dir():
        pytest.skip(f"this build has no {level} kernels (PGFAST_NATIVE=ON, or not x86-64)")
    if not getattr(_cpu, check)():
        pytest.skip(f"this CPU does not run {level} code")
    runs = [run_python(BITS, cwd=tmp_path, PGFAST_KERNELS=kind) for kind in ("baseline", level)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    (base_file, base_digest), (level_file, level_digest) = (r.stdout.split() for r in runs)
    assert "_x86_64_" not in base_file and sub in level_file
    assert base_digest == level_digest


# ---------------------------------------------------------------------------
# Types: py.typed, stubs for the compiled modules, mypy
# ---------------------------------------------------------------------------

def stub_names(path):
    """{top-level name: set of its class body's names} declared in a .pyi file."""
    import ast

    names = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = set()
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            body = node.body if isinstance(node, ast.ClassDef) else []
            names[node.name] = {n.name for n in body if isinstance(n, ast.FunctionDef)} | {
                n.target.id for n in body if isinstance(n, ast.AnnAssign)}
    return names


def runtime_names(module):
    """{name: set of the class's own attribute names} of a compiled module's public
    names and its classes (private ones too: public classes derive from them)."""
    import inspect

    names = {}
    for name, obj in vars(module).items():
        if inspect.ismodule(obj) or (name.startswith("_") and not inspect.isclass(obj)):
            continue
        own = set(vars(obj)) if inspect.isclass(obj) else set()
        names[name] = {n for n in own if not n.startswith("__") or n == "__init__"}
    return names


def test_the_package_is_typed_and_stubs_name_what_the_compiled_modules_define():
    import pgfast

    folder = Path(pgfast.__file__).parent
    assert (folder / "py.typed").is_file()
    kernels = Path(pgfast._cyutility.__file__).parent
    compiled = sorted(p.name.split(".")[0] for p in kernels.iterdir()
                      if p.name.endswith(".so") or p.name.endswith(".pyd"))
    for name in compiled:
        if name == "_cyutility":   # Cython's shared utility code: nothing public
            continue
        stub = folder / f"{name}.pyi"
        assert stub.is_file(), f"no stub for the compiled module pgfast.{name}"
        declared = stub_names(stub)
        if name == "_mujoco_envs":   # its mj_* symbols come from the library pgfast.mujoco loads
            if not pgfast.mujoco.available():
                continue
            module = pgfast.mujoco._module()
        else:
            module = importlib.import_module(f"pgfast.{name}")
        defined = runtime_names(module)
        if "__getattr__" in declared:   # a partial stub (optional module): what it names exists
            assert set(declared) - {"__getattr__"} <= set(defined), name
            continue
        assert set(declared) == set(defined), name
        for cls, members in defined.items():
            # A class's own attributes; __init__ is declared where it is written (Cython
            # also gives inherited classes one)
            assert members - {"__init__"} <= declared[cls], (name, cls)


@needs_source_tree
@pytest.mark.slow
def test_mypy_passes_on_the_package(tmp_path):
    pytest.importorskip("mypy", reason="the type check needs mypy (pip install '.[test]')")
    result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path), "pgfast"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------
# The benchmark suite ships with the package
# ---------------------------------------------------------------------------

def test_the_benchmark_suite_is_installed():
    import pgfast  # noqa: F401  (pgfast.benchmarks is found through the package)

    spec = importlib.util.find_spec("pgfast.benchmarks")
    suite = Path(next(iter(spec.submodule_search_locations)))
    assert {p.name for p in suite.glob("bench_*.py")} >= {"bench_returns.py", "bench_rollout.py"}


@pytest.mark.slow
def test_pgfast_bench_runs_from_any_folder(tmp_path):
    pytest.importorskip("pytest_benchmark", reason="pgfast bench needs pytest-benchmark")
    result = subprocess.run(
        [sys.executable, "-m", "pgfast", "bench", "-k",
         "reward_to_go_pgfast or reward_to_go_numpy"], cwd=tmp_path, capture_output=True,
        text=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert "reward_to_go (2048, 64) float64" in result.stdout
    assert "test_reward_to_go_pgfast" in result.stdout
    assert "test_reward_to_go_numpy_loop" in result.stdout


# ---------------------------------------------------------------------------
# The docstrings' examples run against the installed package
# ---------------------------------------------------------------------------

# Optional frameworks that some module or example may reach for; blocked below so
# that the run sees a venv without them (`import torch` raises ImportError).
OPTIONAL = ("torch", "jax", "jaxlib", "stable_baselines3", "cleanrl", "envpool", "ray", "onnx",
            "onnxruntime", "optuna", "tensorboard", "imageio", "mujoco", "array_api_strict")

RUN_BLOCKED = """
import sys
for name in {optional!r}:
    sys.modules[name] = None   # import name -> ImportError, as if not installed
import pytest
sys.exit(pytest.main(["--doctest-modules", "--pyargs", "pgfast", "-q", "-p", "no:cacheprovider"]))
"""


@pytest.mark.slow
def test_doctests_run_without_the_optional_frameworks(tmp_path):
    """`pytest --doctest-modules --pyargs pgfast`, how a user runs the docstrings'
    examples against an installed package: every module collects (the SB3 buffers'
    module imports without SB3) and every example passes."""
    result = subprocess.run([sys.executable, "-c", RUN_BLOCKED.format(optional=OPTIONAL)],
                            cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "error" not in result.stdout.lower(), result.stdout


def test_sb3_buffers_without_sb3_are_refused_by_name():
    if importlib.util.find_spec("stable_baselines3") is not None:
        pytest.skip("Stable-Baselines3 is installed: its absence cannot be seen here")
    from pgfast.integrations import sb3

    with pytest.raises(ImportError, match="RolloutBuffer needs Stable-Baselines3: pip install"):
        sb3.RolloutBuffer
    with pytest.raises(ImportError, match="DictRolloutBuffer needs Stable-Baselines3"):
        from pgfast.integrations.sb3 import DictRolloutBuffer  # noqa: F401
    with pytest.raises(AttributeError):
        sb3.something_else


def test_train_evaluate_and_rollout_are_fully_annotated():
    """typing.get_type_hints resolves a hint for every parameter and the return
    (py.typed promises them; mypy then checks the callers)."""
    import inspect
    import typing

    import pgfast

    for func in (pgfast.train, pgfast.evaluate, pgfast.rollout):
        hints = typing.get_type_hints(func)
        assert set(hints) == set(inspect.signature(func).parameters) | {"return"}, func.__name__
