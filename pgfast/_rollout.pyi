# Stub for the compiled module src/_rollout.pyx (arguments are checked by pgfast.rollout).
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._envs import VecEnvKernel
from ._policies import PolicyKernel

def bitgen_pointers(generators: Sequence[np.random.Generator]) -> NDArray: ...
class InvalidAction(Exception): ...
class RewardOverflow(Exception): ...

class NextStepAutoreset:
    elapsed: NDArray
    needs_reset: NDArray
    last_obs: NDArray
    def __init__(self, env: VecEnvKernel, obs_dtype: Any, action_shape: tuple[int, ...] | None,
                 convert: Callable[[Any], NDArray]) -> None: ...
    def step(self, actions: Any) -> tuple[NDArray, NDArray, NDArray, NDArray]: ...

def rollout(env: VecEnvKernel, policy: PolicyKernel, thetas: NDArray, bitgens: NDArray,
            time_limit: int, observations: NDArray, actions: NDArray, rewards: NDArray,
            terminated: NDArray, truncated: NDArray, log_probs: NDArray,
            final_observations: NDArray, last_observations: NDArray, status: NDArray,
            steps: NDArray, deterministic: bool = False, first_episode: bool = False,
            num_threads: int = 1) -> None: ...
