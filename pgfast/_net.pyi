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
    def fit_minibatches(self, theta: NDArray, obs: NDArray, targets: NDArray, order: NDArray,
                        size: int, m: NDArray, v: NDArray, t: int, alpha: float,
                        beta1: float, beta2: float, eps: float,
                        num_threads: int = 1) -> int: ...


def adam_step(theta: NDArray, grad: NDArray, m: NDArray, v: NDArray, t: int, alpha: float,
              beta1: float, beta2: float, eps: float, out: NDArray) -> None: ...
