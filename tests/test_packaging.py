"""What pgfast ships: the sdist's file list, the installed package's files.

The sdist is built with scikit-build-core's PEP 517 hook from a copy of the
source tree (a few seconds: no compilation), with decoys beside the sources
that must stay out of it.
"""
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("src", "pgfast", "tests", "benchmarks", "examples")
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
            if path.is_file() and "__pycache__" not in parts and path.suffix not in (".so", ".pyd", ".pyc"):
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
                  "dist/old.tar.gz", "runs/cartpole/checkpoint.npz", "pgfast/_returns.cpython-311.so",
                  "pgfast/__pycache__/cli.cpython-311.pyc", "src/_returns.c", "notes.txt"):
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
