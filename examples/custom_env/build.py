"""Build point_mass.pyx into an importable extension module, without setuptools.

Two commands, the ones any build system runs for a Cython module:

1. ``python -m cython -I <pgfast.get_include()> point_mass.pyx -o point_mass.c``:
   the include folder holds the installed ``pgfast/_envs.pxd``, the contract
   that ``from pgfast._envs cimport VecEnvKernel`` reads.
2. The C compiler Python was built with (sysconfig's CC and LDSHARED, or $CC)
   compiles and links point_mass.c against Python's and numpy's headers and
   numpy's ``npyrandom`` library (``random_standard_uniform``) into
   ``point_mass<EXT_SUFFIX>``, e.g. ``point_mass.cpython-312-x86_64-linux-gnu.so``.

Usage::

    python examples/custom_env/build.py [OUT_DIR]    # default: next to this file

or ``build(out_dir)`` from Python, which returns the path of the module file.
Needs Cython >= 3 and a C compiler (gcc or clang) on POSIX.
"""
from __future__ import annotations

import importlib.util
import os
import platform
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np

import pgfast

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "point_mass.pyx"


class BuildError(RuntimeError):
    """The example could not be built (no Cython, no C compiler, or an error)."""


def _split(flags):
    """Shell words of a sysconfig value; on macOS, this machine's arch only
    (a universal2 Python lists two, numpy's static npyrandom has one)."""
    words = shlex.split(flags or "")
    if sys.platform != "darwin":
        return words
    kept = []
    for w in words:
        if kept and kept[-1] == "-arch":
            kept.pop()
        elif w != "-arch":
            kept.append(w)
    return kept + ["-arch", platform.machine()]


def find_compiler():
    """(compiler words, compile flags, link flags) for a shared extension module.

    $CC first, then the compiler Python was built with and its flags; when that
    one is not installed here, ``cc``, ``gcc`` or ``clang`` with plain flags.
    """
    config = sysconfig.get_config_var
    shared = ["-bundle", "-undefined", "dynamic_lookup"] if sys.platform == "darwin" \
        else ["-shared"]
    # LDSHARED is "<compiler words> <link flags>": keep the flags.
    ldshared = _split(config("LDSHARED"))
    first_flag = next((i for i, w in enumerate(ldshared) if w.startswith("-")), len(ldshared))
    link = ldshared[first_flag:]
    native = (_split(config("CFLAGS")) + _split(config("CCSHARED")), link or shared)
    plain = (["-O2", "-fPIC"], shared)
    tried = []
    for cc, (cflags, ldflags) in ((os.environ.get("CC"), native), (config("CC"), native),
                                  ("cc", plain), ("gcc", plain), ("clang", plain)):
        words = shlex.split(cc or "")
        if words:
            tried.append(words[0])
            if shutil.which(words[0]):
                return words, cflags, ldflags
    raise BuildError(f"no C compiler found (tried {', '.join(dict.fromkeys(tried))}): "
                     "install gcc or clang, or set CC to one")


def _run(cmd, what, cwd):
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"{what} failed ({shlex.join(map(str, cmd))}):\n"
                         f"{result.stdout}{result.stderr}")


def build(out_dir=HERE, source=SOURCE) -> Path:
    """Compile `source` (default point_mass.pyx) into `out_dir`; return the extension
    module's path (the module is named after the file)."""
    if importlib.util.find_spec("Cython") is None:
        raise BuildError("Cython is not installed: pip install 'cython>=3'")
    cc, cflags, ldflags = find_compiler()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    source = Path(source).resolve()
    target = out_dir / f"{source.stem}{sysconfig.get_config_var('EXT_SUFFIX')}"
    paths = sysconfig.get_paths()
    includes = dict.fromkeys([paths["include"], paths["platinclude"], np.get_include()])
    npyrandom = Path(np.__file__).parent / "random" / "lib"
    with tempfile.TemporaryDirectory() as tmp:
        c_file = Path(tmp) / f"{source.stem}.c"
        _run([sys.executable, "-m", "cython", "-I", pgfast.get_include(),
              "-o", c_file, source], "cython", tmp)
        _run(cc + cflags + ldflags + [f"-I{d}" for d in includes]
             + ["-DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION", c_file, "-o", target,
                f"-L{npyrandom}", "-lnpyrandom", "-lm"], "C compiler", tmp)
    return target


if __name__ == "__main__":
    try:
        path = build(sys.argv[1] if len(sys.argv) > 1 else HERE)
    except BuildError as err:
        sys.exit(f"build.py: {err}")
    print(f"built {path}")
