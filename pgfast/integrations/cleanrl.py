"""The advantage block of CleanRL's ``ppo.py`` as one call (any CPU arrays: torch, NumPy, ...).

CleanRL stores, for step t of a (num_steps, num_envs) rollout, ``dones[t]``: the
episode ended just before s_t (``next_done`` when s_t was observed), and after
the loop ``next_value`` = V(s_T), ``next_done``. Its block::

    with torch.no_grad():
        next_value = agent.get_value(next_obs).reshape(1, -1)
        advantages = ...  # the 12-line reversed loop over lastgaelam
        returns = advantages + values

becomes::

    with torch.no_grad():
        next_value = agent.get_value(next_obs).reshape(1, -1)
    advantages, returns = cleanrl_gae(rewards, values, dones, next_value, next_done,
                                      args.gamma, args.gae_lambda)

:func:`cleanrl_gae` keeps CleanRL's convention, ``next_done = terminations or
truncations``: a time limit is treated as a terminal state (no bootstrap).
:func:`truncation_aware_gae` bootstraps at time limits instead: store the step's
``terminations`` and ``truncations`` as env.step returns them and V(final
observation) where an episode was truncated. Tensors must be on the CPU; the
results are tensors of the inputs' dtype and carry no autograd graph.
"""
from __future__ import annotations

import numpy as np

from .._arrays import arrays_in_out
from ..returns import gae

__all__ = ["cleanrl_gae", "truncation_aware_gae"]


def _then(rows, last, name):
    """rows[1:] followed by `last` (one value per env): the quantities of step t + 1."""
    rows = np.asarray(rows)
    last = np.asarray(last)
    if last.size != int(np.prod(rows.shape[1:])):
        raise ValueError(f"{name}: expected one value per env ({rows.shape[1:]}), "
                         f"got shape {last.shape}")
    return np.concatenate((rows[1:], last.reshape((1,) + rows.shape[1:]).astype(rows.dtype)))


@arrays_in_out("rewards", "values", "next_value", other=("dones", "next_done"))
def cleanrl_gae(rewards, values, dones, next_value, next_done, gamma, gae_lambda):
    """CleanRL's GAE: A_t and A_t + V(s_t), with CleanRL's ``dones`` convention.

    The episode ends after step t where ``dones[t + 1]`` (after the last step where
    ``next_done``), with no bootstrap there; otherwise as :func:`pgfast.gae`.

    Parameters
    ----------
    rewards, values, dones : array, shape (num_steps, num_envs) or (num_steps,)
        r_t, V(s_t), and ``dones[t]``: the episode ended just before s_t, as CleanRL
        stores it.
    next_value, next_done : array with one entry per env
        V(s_T) and the done flag after the last step.
    gamma, gae_lambda : float in [0, 1]
        The discount γ and GAE's λ.

    Returns
    -------
    advantages : array, shape of rewards
        A_t, of the inputs' array type and float dtype.
    returns : array, shape of rewards
        ``advantages + values``, CleanRL's value targets.

    Raises
    ------
    ValueError
        ``next_value`` or ``next_done`` without one entry per env, shapes that differ
        from rewards', γ or λ outside [0, 1], or non-finite input.
    TypeError
        Non-numeric input.

    Examples
    --------
    One env, three steps; ``dones[2]``: the episode ended after step 1:

    >>> import numpy as np
    >>> from pgfast.integrations.cleanrl import cleanrl_gae
    >>> rewards, values = np.ones(3), np.zeros(3)
    >>> dones = np.array([0.0, 0.0, 1.0])
    >>> advantages, returns = cleanrl_gae(rewards, values, dones, next_value=0.5,
    ...                                   next_done=0.0, gamma=1.0, gae_lambda=1.0)
    >>> advantages
    array([2. , 1. , 1.5])
    """
    values = np.asarray(values)
    ended = _then(np.asarray(dones) != 0, np.asarray(next_done) != 0, "next_done")
    advantages = gae(rewards, values, _then(values, next_value, "next_value"), gamma,
                     gae_lambda, terminated=ended)
    return advantages, advantages + values


@arrays_in_out("rewards", "values", "next_value", "final_values",
               other=("terminations", "truncations"))
def truncation_aware_gae(rewards, values, next_value, terminations, truncations, final_values,
                         gamma, gae_lambda):
    """GAE that bootstraps at time limits: δ_t = r_t + γ (1 − terminated_t) V(s_{t+1}) − V(s_t).

    V(s_{t+1}) is ``final_values[t]`` where ``truncations[t]``, ``values[t + 1]``
    within an episode and ``next_value`` after the last step; otherwise as
    :func:`pgfast.gae`.

    Parameters
    ----------
    rewards, values : array, shape (num_steps, num_envs) or (num_steps,)
        r_t and V(s_t).
    next_value : array with one entry per env
        V(s_T), the observation after the last step.
    terminations, truncations : array of bool, shape of rewards
        Step t's flags as env.step returned them (not shifted as CleanRL's ``dones``).
    final_values : array, shape of rewards
        V(final observation of the episode) where ``truncations[t]``; read nowhere else
        (with Gymnasium's same-step autoreset the final observation is in ``infos``).
    gamma, gae_lambda : float in [0, 1]
        The discount γ and GAE's λ.

    Returns
    -------
    advantages : array, shape of rewards
        A_t, of the inputs' array type and float dtype.
    returns : array, shape of rewards
        ``advantages + values``, the value targets.

    Raises
    ------
    ValueError
        ``next_value`` without one entry per env, shapes that differ from rewards',
        γ or λ outside [0, 1], or non-finite input.
    TypeError
        Non-numeric input, or flags that are not booleans.

    Examples
    --------
    One env, three steps, a time limit after step 1 where V(final observation) = 10:

    >>> import numpy as np
    >>> from pgfast.integrations.cleanrl import truncation_aware_gae
    >>> rewards, values = np.ones(3), np.zeros(3)
    >>> terminations = np.array([False, False, False])
    >>> truncations = np.array([False, True, False])
    >>> final_values = np.array([0.0, 10.0, 0.0])
    >>> advantages, returns = truncation_aware_gae(rewards, values, 0.5, terminations,
    ...                                            truncations, final_values, 0.5, 1.0)
    >>> advantages                 # 1 + 0.5 · 6, 1 + 0.5 · 10, 1 + 0.5 · 0.5
    array([4.  , 6.  , 1.25])
    """
    values = np.asarray(values)
    for name, x in (("truncations", truncations), ("final_values", final_values)):
        if np.shape(x) != values.shape:
            raise ValueError(f"{name}: expected shape {values.shape} (that of values), "
                             f"got {np.shape(x)}")
    next_values = _then(values, next_value, "next_value")
    next_values = np.where(np.asarray(truncations) != 0, final_values, next_values)
    advantages = gae(rewards, values, next_values, gamma, gae_lambda,
                     terminated=terminations, truncated=truncations)
    return advantages, advantages + values
