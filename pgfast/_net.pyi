# Stub for the compiled module src/_net.pyx (the tanh MLP of every policy and value function).
from collections.abc import Sequence

from numpy.typing import NDArray

class Net:
    n_layers: int
    in_dim: int
    out_dim: int
    n_params: int
    sum_hidden: int
    def __init__(self, sizes: Sequence[int]) -> None: ...
    def predict(self, theta: NDArray, obs: NDArray, z: NDArray) -> None: ...
    def squared_error_grad(self, theta: NDArray, obs: NDArray, targets: NDArray,
                           grad: NDArray, num_threads: int = 1) -> float: ...
