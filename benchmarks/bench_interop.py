"""Arrays in, arrays out: the cost of taking other libraries' arrays, and pgfast's
SB3 rollout buffer next to SB3's own advantage computation.

    OPENBLAS_NUM_THREADS=1 pytest benchmarks/bench_interop.py --benchmark-only

- "gae float32 (T, B)": the same GAE call with NumPy arrays and with PyTorch / JAX
  CPU arrays (the conversion overhead is the difference; targets: <= 10 % at
  (2048, 64), <= 10 µs at (128,)).
- "sb3 advantages": compute_returns_and_advantage on the buffer of a PPO rollout on
  CartPole, SB3's RolloutBuffer next to pgfast.integrations.sb3's (target >= 50x).
"""
import copy

import numpy as np
import pytest

import pgfast

SHAPES = {"(2048, 64)": (2048, 64), "(128,)": (128,)}


def gae_inputs(shape):
    rng = np.random.default_rng(0)
    floats = [rng.standard_normal(shape).astype(np.float32) for _ in range(3)]
    flags = [rng.random(shape) < 0.01, rng.random(shape) < 0.005]
    return floats + flags


def to_library(name, arrays):
    if name == "numpy":
        return arrays
    if name == "torch":
        torch = pytest.importorskip("torch", reason="PyTorch not installed")
        return [torch.from_numpy(a) for a in arrays]
    jnp = pytest.importorskip("jax.numpy", reason="JAX not installed")
    return [jnp.asarray(a) for a in arrays]


@pytest.mark.parametrize("library", ["numpy", "torch", "jax"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_gae_float32(benchmark, shape, library):
    benchmark.group = f"gae float32 {shape}"
    r, v, nv, term, trunc = to_library(library, gae_inputs(SHAPES[shape]))
    out = benchmark(pgfast.gae, r, v, nv, 0.99, 0.95, term, trunc)
    assert type(out) is type(r) and out.dtype == r.dtype


# --------------------------------------------------------------------------- Stable-Baselines3

ROLLOUTS = {"PPO default: 1 env x 2048 steps": (1, 2048), "rl-zoo: 8 envs x 32 steps": (8, 32)}


@pytest.fixture(scope="module", params=sorted(ROLLOUTS))
def sb3_rollout(request):
    """A PPO rollout buffer on CartPole and the (last_values, dones) it ended with."""
    pytest.importorskip("stable_baselines3", reason="Stable-Baselines3 not installed")
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from pgfast.integrations import sb3

    end = {}

    class Recorded(sb3.RolloutBuffer):
        # kept as the rollout left it: training flattens the buffer afterwards
        def compute_returns_and_advantage(self, last_values, dones):
            end["buffer"] = copy.deepcopy(self)
            end["args"] = (last_values.clone(), dones.copy())
            super().compute_returns_and_advantage(last_values, dones)

    n_envs, n_steps = ROLLOUTS[request.param]
    model = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=n_envs, seed=0),
                n_steps=n_steps, batch_size=n_steps * n_envs, n_epochs=1, seed=0,
                device="cpu", rollout_buffer_class=Recorded)
    model.learn(total_timesteps=n_steps * n_envs)
    return request.param, end["buffer"], end["args"]


def test_sb3_advantages_sb3(benchmark, sb3_rollout):
    from stable_baselines3.common.buffers import RolloutBuffer

    name, buf, args = sb3_rollout
    benchmark.group = f"sb3 advantages, {name}"
    benchmark(RolloutBuffer.compute_returns_and_advantage, buf, *args)


def test_sb3_advantages_pgfast(benchmark, sb3_rollout):
    from pgfast.integrations import sb3

    name, buf, args = sb3_rollout
    benchmark.group = f"sb3 advantages, {name}"
    benchmark(sb3.RolloutBuffer.compute_returns_and_advantage, buf, *args)
