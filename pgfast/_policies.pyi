# Stub for the compiled module src/_policies.pyx (arguments are checked by pgfast.policies).
from collections.abc import Sequence
from typing import Any

import numpy as np
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
                           grad: NDArray) -> float: ...

class PolicyKernel:
    obs_dim: int
    act_dim: int
    n_actions: int
    n_params: int
    work_size: int

class NetPolicy(PolicyKernel):
    net: Net
    n_extra: int
    def sample_into(self, theta: NDArray, obs: NDArray, rng: np.random.Generator,
                    actions: NDArray, logp: NDArray) -> Any: ...
    def mode_into(self, theta: NDArray, obs: NDArray, actions: NDArray) -> Any: ...
    def outputs_into(self, theta: NDArray, obs: NDArray, z: NDArray) -> Any: ...
    def log_prob_into(self, theta: NDArray, obs: NDArray, actions: NDArray,
                      logp: NDArray) -> Any: ...
    def grad_log_prob_into(self, theta: NDArray, obs: NDArray, actions: NDArray,
                           weights: NDArray | None, grad: NDArray, rows: NDArray | None,
                           num_threads: int = 1) -> Any: ...
    def kl_into(self, theta_old: NDArray, theta_new: NDArray, obs: NDArray, kl: NDArray,
                grad: NDArray | None) -> Any: ...
    def entropy_into(self, theta: NDArray, obs: NDArray, ent: NDArray) -> Any: ...
    def entropy_grad_into(self, theta: NDArray, obs: NDArray, grad: NDArray) -> Any: ...
    def forward_into(self, theta: NDArray, obs: NDArray, cache: NDArray,
                     num_threads: int = 1) -> Any: ...
    def fvp_into(self, theta: NDArray, obs: NDArray, v: NDArray, out: NDArray,
                 cache: NDArray | None = None, num_threads: int = 1) -> Any: ...
    def vjp_rows_into(self, theta: NDArray, obs: NDArray, dz: NDArray, rows: NDArray) -> Any: ...

class SoftmaxKernel(NetPolicy):
    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int] = ()) -> None: ...

class GaussianKernel(NetPolicy):
    learn_std: bool
    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (),
                 log_std: Any = None, learn_std: bool = True) -> None: ...
