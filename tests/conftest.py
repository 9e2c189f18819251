"""Fixtures the test modules share. The kernels' NumPy references are the public
``pgfast.reference``; helpers live beside the tests (``helpers.py``); the package
itself is imported from the installed wheel (pytest runs with --import-mode=importlib)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import pgfast  # noqa: E402  (after the path: helpers import beside it)


@pytest.fixture(scope="module")
def softmax():
    """A linear softmax policy for CartPole's 4 observations and 2 actions."""
    return pgfast.LinearSoftmax(4, 2)


@pytest.fixture(scope="module")
def cartpole():
    """CartPole with γ = 0.99 and rollouts of depth 100."""
    return pgfast.Problem("CartPole-v1", gamma=0.99, horizon=100)


@pytest.fixture(scope="module")
def regulator():
    """The simple regulator of known gradient, γ = 1, depth 4 (tests.helpers.DEPTH)."""
    from helpers import DEPTH
    return pgfast.Problem("pgfast/SimpleRegulator-v0", gamma=1.0, horizon=DEPTH)
