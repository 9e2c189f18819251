"""How ``pytest --doctest-modules --pyargs pgfast`` treats the examples of the
modules built on an optional framework: skipped, with the reason, where the
framework is not installed (pgfast depends on none of them).

pytest reads this file only when it collects the installed package itself; the
test suite (``tests/``) and ``import pgfast`` never load it.
"""
from __future__ import annotations

import importlib

import pytest

# module whose examples need the framework -> (the framework's module, how to install it)
NEEDS = {
    "pgfast.distributed": ("ray", 'pip install "pgfast[ray]"'),
    "pgfast.mujoco": ("mujoco", 'pip install "pgfast[mujoco]"'),
    "pgfast.integrations.sb3": ("stable_baselines3", "pip install stable-baselines3"),
    "pgfast.export.export_onnx": ("onnx", 'pip install "pgfast[onnx]"'),
    "pgfast.export.onnx_actions": ("onnxruntime", 'pip install "pgfast[onnx]"'),
    "pgfast.loggers": ("tensorboardX", 'pip install "pgfast[tensorboard]"'),
    "pgfast.video": ("imageio", 'pip install "pgfast[video]"'),
    "pgfast.tuning": ("optuna", 'pip install "pgfast[tune]"'),
}


def _missing(framework: str) -> bool:
    try:
        importlib.import_module(framework)
    except ImportError:
        return True
    return False


def pytest_collection_modifyitems(items):
    missing = {}
    for item in items:
        for module, (framework, install) in NEEDS.items():
            if item.name == module or item.name.startswith(module + "."):
                if missing.setdefault(framework, _missing(framework)):
                    item.add_marker(pytest.mark.skip(
                        reason=f"{module}'s examples need {framework} ({install})"))
