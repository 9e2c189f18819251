"""Drop-in advantage computations for the libraries people train with.

Each module imports its library only when it is imported itself; ``import pgfast``
never imports any of them, and pgfast depends on none.

- :mod:`pgfast.integrations.sb3`: Stable-Baselines3 rollout buffers whose
  ``compute_returns_and_advantage`` is :func:`pgfast.gae`.
- :mod:`pgfast.integrations.cleanrl`: the advantage block of CleanRL's ``ppo.py``
  as one call, with its ``dones`` convention or with truncations bootstrapped.
"""
