# Stub for the compiled module src/_gaussian.pyx.
from collections.abc import Sequence
from typing import Any

from ._policies import NetPolicy

class GaussianKernel(NetPolicy):
    learn_std: bool
    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (),
                 log_std: Any = None, learn_std: bool = True) -> None: ...
