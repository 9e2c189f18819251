# Stub for the compiled module src/_softmax.pyx.
from collections.abc import Sequence

from ._policies import NetPolicy

class SoftmaxKernel(NetPolicy):
    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int] = ()) -> None: ...
