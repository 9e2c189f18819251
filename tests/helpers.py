"""Small helpers several test modules use."""
import numpy as np

DEPTH = 4   # the regulator fixture's rollout depth


def theta0(policy, seed=0):
    """The policy's initial parameters from a fixed seed."""
    return policy.init(np.random.default_rng(seed))
