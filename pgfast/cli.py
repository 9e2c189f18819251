"""The ``pgfast`` command line."""
from __future__ import annotations

import argparse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="pgfast", description=__doc__)
    parser.add_argument("--version", action="store_true")
    args = parser.parse_args(argv)
    from . import __version__
    print(__version__)
    return 0
