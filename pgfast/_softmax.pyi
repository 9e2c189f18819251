# Stub for the compiled module src/_softmax.pyx.
from collections.abc import Sequence

from numpy.typing import NDArray

from ._policies import NetPolicy

class SoftmaxKernel(NetPolicy):
    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int] = ()) -> None: ...
    def index_score_sum(self, theta: NDArray, obs: NDArray, actions: NDArray,
                        weights: NDArray, grad: NDArray) -> bool: ...
