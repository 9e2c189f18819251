# Stub for the compiled module src/_envs.pyx (arguments are checked by pgfast.envs);
# pgfast/_envs.pxd is the C-level interface a user's own kernel subclasses.
from typing import Any

import numpy as np
from numpy.typing import NDArray

# The one env spec table: per env id its kernel class, time limit, spaces and reset
# defaults, read by the kernels and by pgfast/envs.py.
SPECS: dict[str, dict[str, Any]]

class VecEnvKernel:
    num_envs: int
    obs_dim: int
    act_dim: int
    n_actions: int
    max_episode_steps: int
    def __init__(self, num_envs: int, obs_dim: int, act_dim: int, n_actions: int,
                 max_episode_steps: int = 0, seed: Any = None) -> None: ...
    def seed(self, seed: Any = None) -> None: ...
    def reset_all(self, obs: NDArray, mask: NDArray | None = None) -> Any: ...
    def reset_slot(self, i: int, rng: np.random.Generator) -> NDArray: ...
    def step_slot(self, i: int, action: NDArray,
                  rng: np.random.Generator) -> tuple[NDArray, float, int]: ...

class _StateKernel(VecEnvKernel):
    state_dim: int
    def get_state(self) -> NDArray: ...
    def set_state(self, state: NDArray) -> None: ...
    def observe(self) -> NDArray: ...
    # Defined by the kernels whose spec has reset bounds (all but SimpleRegulator);
    # pgfast/envs.py calls it only for those.
    def set_reset_bounds(self, low: float, high: float) -> None: ...

class _UniformResetKernel(_StateKernel):
    def set_reset_bounds(self, low: float, high: float) -> None: ...

class CartPoleKernel(_UniformResetKernel):
    def __init__(self, num_envs: int, seed: Any = None, max_episode_steps: int = 500) -> None: ...

class AcrobotKernel(_UniformResetKernel):
    def __init__(self, num_envs: int, seed: Any = None, max_episode_steps: int = 500) -> None: ...

class _MountainCarBase(_UniformResetKernel):
    def __init__(self, num_envs: int, n_actions: int, max_episode_steps: int,
                 seed: Any) -> None: ...

class MountainCarKernel(_MountainCarBase):
    def __init__(self, num_envs: int, seed: Any = None, max_episode_steps: int = 200) -> None: ...

class MountainCarContinuousKernel(_MountainCarBase):
    def __init__(self, num_envs: int, seed: Any = None, max_episode_steps: int = 999) -> None: ...

class PendulumKernel(_StateKernel):
    g: float
    def __init__(self, num_envs: int, seed: Any = None, max_episode_steps: int = 200,
                 g: float = 10.0) -> None: ...
    def set_reset_bounds(self, x_init: float, y_init: float) -> None: ...

class SimpleRegulatorKernel(_StateKernel):
    def __init__(self, num_envs: int, seed: Any = None, max_episode_steps: int = 0) -> None: ...
