"""pgfast: fast, faithful policy-gradient estimation and optimization."""
from . import envs
from .envs import NativeEnv, NativeVectorEnv, make_kernel, make_vec, native_ids
from .returns import discount_powers, episode_stats, gae, reward_to_go

__version__ = "0.1.0"

__all__ = [
    "NativeEnv",
    "NativeVectorEnv",
    "envs",
    "make_kernel",
    "make_vec",
    "native_ids",
    "discount_powers",
    "episode_stats",
    "gae",
    "reward_to_go",
]
