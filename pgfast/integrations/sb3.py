"""Stable-Baselines3 rollout buffers whose advantages come from :func:`pgfast.gae`.

    from stable_baselines3 import PPO
    from pgfast.integrations.sb3 import RolloutBuffer

    model = PPO("MlpPolicy", "CartPole-v1", rollout_buffer_class=RolloutBuffer)

The result equals SB3's own ``compute_returns_and_advantage`` to float32 rounding
(pgfast sums in double precision and rounds once), including SB3's timeout
convention: at a time limit SB3 has already added γ V(final observation) to the
step's reward, so every episode end is a terminal state to the buffer.
In SB3's layout ``episode_starts[t + 1]`` marks the end of an episode after step
t, and ``dones`` the end after the buffer's last step; V(s_{t+1}) is
``values[t + 1]``, or ``last_values`` after the last step. Unlike SB3's loop,
a NaN or infinite reward or value raises a ValueError instead of spreading.
"""
from __future__ import annotations

import numpy as np

from ..returns import gae

__all__ = ["RolloutBuffer", "DictRolloutBuffer"]

try:
    from stable_baselines3.common import buffers as _sb3
    _HAVE_SB3 = True
except ImportError:   # pgfast never depends on SB3
    _HAVE_SB3 = False

if not _HAVE_SB3:
    # The module still imports (so `pytest --doctest-modules --pyargs pgfast` collects
    # it); its buffers, which derive from SB3's, are refused by name.
    def __getattr__(name):
        if name in __all__:
            raise ImportError(f"pgfast.integrations.sb3.{name} needs Stable-Baselines3: "
                              "pip install stable-baselines3")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
else:
    class _PgfastAdvantage:
        """compute_returns_and_advantage through pgfast.gae; mixed into SB3's buffers."""

        def compute_returns_and_advantage(self, last_values, dones) -> None:
            # last_values lives on the policy's device, as in SB3's own method
            last = last_values.detach().cpu().numpy().reshape(1, self.n_envs)
            next_values = np.concatenate((self.values[1:], last.astype(np.float32)))
            ended = np.concatenate((self.episode_starts[1:] != 0,
                                    np.asarray(dones).reshape(1, self.n_envs) != 0))
            gae(self.rewards, self.values, next_values, self.gamma, self.gae_lambda,
                terminated=ended, out=self.advantages)
            self.returns = self.advantages + self.values


    class RolloutBuffer(_PgfastAdvantage, _sb3.RolloutBuffer):
        """SB3's RolloutBuffer with pgfast's GAE; pass as ``rollout_buffer_class``.

        ``compute_returns_and_advantage(last_values, dones)`` writes :func:`pgfast.gae`
        into ``advantages`` (SB3's result to float32 rounding) and advantages + values
        into ``returns``; a NaN or infinite reward or value raises a ValueError there.

        Parameters
        ----------
        buffer_size : int
            Steps per env in one rollout (the algorithm's ``n_steps``).
        observation_space, action_space : gymnasium.spaces.Space
            The env's spaces.
        device : torch.device or str
            Where sampled minibatches go; "auto" picks CUDA when there is one.
        gae_lambda : float
            GAE's λ.
        gamma : float
            The discount γ.
        n_envs : int
            The number of envs side by side.

        Examples
        --------
        PPO with this buffer:

        >>> from stable_baselines3 import PPO
        >>> from pgfast.integrations.sb3 import RolloutBuffer
        >>> model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, rollout_buffer_class=RolloutBuffer)
        >>> isinstance(model.rollout_buffer, RolloutBuffer)
        True

        Its advantages are SB3's own:

        >>> import numpy as np
        >>> import torch
        >>> from gymnasium import spaces
        >>> from stable_baselines3.common import buffers
        >>> args = (16, spaces.Box(-1, 1, (3,)), spaces.Discrete(2))
        >>> ours = RolloutBuffer(*args, gae_lambda=0.95, gamma=0.99, n_envs=2)
        >>> theirs = buffers.RolloutBuffer(*args, gae_lambda=0.95, gamma=0.99, n_envs=2)
        >>> rng = np.random.default_rng(0)
        >>> rewards, values = rng.normal(size=(2, 16, 2))
        >>> starts = rng.random((16, 2)) < 0.2
        >>> for buf in (ours, theirs):
        ...     buf.rewards[:], buf.values[:], buf.episode_starts[:] = rewards, values, starts
        ...     buf.compute_returns_and_advantage(torch.zeros(2, 1), dones=np.zeros(2))
        >>> bool(np.allclose(ours.advantages, theirs.advantages, atol=1e-5))
        True
        """


    class DictRolloutBuffer(_PgfastAdvantage, _sb3.DictRolloutBuffer):
        """SB3's DictRolloutBuffer (Dict observation spaces) with pgfast's GAE.

        As :class:`RolloutBuffer`, for policies that read a ``spaces.Dict`` observation
        (SB3's ``MultiInputPolicy``).

        Parameters
        ----------
        buffer_size : int
            Steps per env in one rollout (the algorithm's ``n_steps``).
        observation_space : gymnasium.spaces.Dict
            The env's observation space.
        action_space : gymnasium.spaces.Space
            The env's action space.
        device : torch.device or str
            Where sampled minibatches go; "auto" picks CUDA when there is one.
        gae_lambda : float
            GAE's λ.
        gamma : float
            The discount γ.
        n_envs : int
            The number of envs side by side.

        Examples
        --------
        >>> import numpy as np
        >>> import torch
        >>> from gymnasium import spaces
        >>> from stable_baselines3.common import buffers
        >>> from pgfast.integrations.sb3 import DictRolloutBuffer
        >>> args = (16, spaces.Dict({"x": spaces.Box(-1, 1, (3,))}), spaces.Discrete(2))
        >>> ours = DictRolloutBuffer(*args, gae_lambda=0.95, gamma=0.99, n_envs=2)
        >>> theirs = buffers.DictRolloutBuffer(*args, gae_lambda=0.95, gamma=0.99, n_envs=2)
        >>> rng = np.random.default_rng(0)
        >>> rewards, values = rng.normal(size=(2, 16, 2))
        >>> starts = rng.random((16, 2)) < 0.2
        >>> for buf in (ours, theirs):
        ...     buf.rewards[:], buf.values[:], buf.episode_starts[:] = rewards, values, starts
        ...     buf.compute_returns_and_advantage(torch.zeros(2, 1), dones=np.zeros(2))
        >>> bool(np.allclose(ours.returns, theirs.returns, atol=1e-5))
        True
        """
