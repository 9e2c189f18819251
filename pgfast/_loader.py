"""Which compiled kernels pgfast loads; run by pgfast/__init__.py before any of them.

- A source checkout's ``pgfast/`` has no compiled modules. Found ahead of the
  installed package (Python run from the repository root puts it first on
  sys.path), it stops with one line that says what to do, rather than a
  misleading circular-import error from the first kernel import.
- A portable x86-64 build also holds every kernel compiled for x86-64-v3 (AVX2)
  and x86-64-v4 (AVX-512), in ``_x86_64_v3/`` and ``_x86_64_v4/`` beside the
  portable ones (see CMakeLists.txt). A finder ahead of the others loads
  ``pgfast._x`` from the highest level this CPU runs, for a regular and an
  editable install alike. ``PGFAST_KERNELS=baseline`` (or ``x86-64-v3``) caps the
  level. All builds return the same bits.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys

# (name, folder, CPU check name in pgfast._cpu), highest first
LEVELS = (("x86-64-v4", "_x86_64_v4", "has_x86_64_v4"),
          ("x86-64-v3", "_x86_64_v3", "has_x86_64_v3"))


def compiled_dir(package_dir: str) -> str:
    """The folder of pgfast's compiled modules; ImportError when there is none."""
    spec = importlib.util.find_spec("pgfast._cyutility")
    if spec is None or spec.origin is None:
        raise ImportError(
            f"pgfast: no compiled kernels for {package_dir} (a source checkout found before the "
            "installed package?): import pgfast from another folder, or install the checkout "
            "with `pip install -e .`")
    return os.path.dirname(spec.origin)


class _KernelFinder:
    """Finds ``pgfast._x`` in one folder of compiled modules (a meta path finder)."""

    def __init__(self, folder: str):
        suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
        self.files = {"pgfast." + name.split(".", 1)[0]: os.path.join(folder, name)
                      for name in os.listdir(folder) if name.endswith(suffixes)}

    def find_spec(self, fullname, path=None, target=None):
        file = self.files.get(fullname)
        return importlib.util.spec_from_file_location(fullname, file) if file else None


def select_kernels(folder: str) -> str:
    """Load the kernels of the highest x86-64 level beside `folder` that this CPU
    runs from now on; return the build in use ("x86-64-v4", "x86-64-v3" or
    "baseline")."""
    from . import _cpu

    cap = os.environ.get("PGFAST_KERNELS", "").lower()
    allowed = [] if cap == "baseline" else \
        [level for level in LEVELS if not cap or LEVELS.index(level) >= _level_index(cap)]
    for name, sub, check in allowed:
        path = os.path.join(folder, sub)
        if os.path.isdir(path) and getattr(_cpu, check)():
            if not any(isinstance(f, _KernelFinder) for f in sys.meta_path):
                sys.meta_path.insert(0, _KernelFinder(path))
            return name
    return "baseline"


def _level_index(cap):
    """The position in LEVELS of a PGFAST_KERNELS cap ("x86-64-v3"); 0 if unknown."""
    names = [name for name, _, _ in LEVELS]
    return names.index(cap) if cap in names else 0
