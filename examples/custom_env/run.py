"""Roll out pgfast policies in the user-built PointMass through the fused loop.

    python examples/custom_env/build.py    # once: compiles point_mass.pyx here
    python examples/custom_env/run.py

``pgfast.rollout`` sees a ``VecEnvKernel`` and runs its nogil loop, calling
PointMass's ``reset_one`` / ``step_one`` in C: no Python call per step.
"""
import sys
import time

import numpy as np

import pgfast

try:
    import point_mass   # the module build.py wrote next to this file
except ImportError as err:
    sys.exit(f"run.py: {err}; build it first: python examples/custom_env/build.py")

env = point_mass.PointMass(num_envs=64, seed=0)          # time limit: 200 steps
policy = pgfast.LinearGaussian(2, 1)                     # a = w·(x, v) + b + σ ε
rng = np.random.default_rng(0)
log_sigma = np.log(0.2)
candidates = {
    # θ = [w_x, w_v, b, log σ]
    "zero mean, sigma 1": np.zeros(policy.n_params),
    "push right, sigma 0.2": np.array([0.0, 0.0, 1.0, log_sigma]),
    "PD controller, sigma 0.2": np.array([-1.0, -1.5, 0.0, log_sigma]),
}
for name, theta in candidates.items():
    r = pgfast.rollout(env, policy, theta, 200, rng)
    print(f"{name:26s} mean episode return {r.episode_returns.mean():8.2f}  "
          f"episodes {r.episode_returns.size:4d}  terminated {int(r.terminated.sum()):4d}  "
          f"mean length {r.episode_lengths.mean():6.1f}")

steps = 2000
start = time.perf_counter()
pgfast.rollout(env, policy, candidates["PD controller, sigma 0.2"], steps, rng)
seconds = time.perf_counter() - start
print(f"{env.num_envs} x {steps} steps in {seconds * 1e3:.1f} ms "
      f"({env.num_envs * steps / seconds / 1e6:.1f} million steps per second)")
