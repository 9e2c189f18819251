"""pgfast.distributed on a two-node Ray cluster simulated on this machine
(``ray.cluster_utils.Cluster``): one actor per node, the local result, and a
node lost between calls."""
import os

import numpy as np
import pytest

import pgfast

ray = pytest.importorskip("ray", reason='Ray is an optional extra: pip install "pgfast[ray]"')
from ray.cluster_utils import Cluster  # noqa: E402

from pgfast.distributed import RayVecEnv  # noqa: E402

FIELDS = ("observations", "actions", "rewards", "terminated", "truncated", "log_probs",
          "last_observations", "final_observations")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # Started away from the source tree: Ray puts the driver's working folder
    # first on the workers' path, and they must import the installed pgfast.
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("ray"))
    try:
        cluster = Cluster(initialize_head=True,
                          head_node_args={"num_cpus": 1, "include_dashboard": False})
        worker = cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, logging_level="ERROR")
    finally:
        os.chdir(cwd)
    yield cluster, worker
    ray.shutdown()
    cluster.shutdown()


def test_two_nodes_give_the_local_rollout_and_survive_losing_one(cluster):
    cluster, worker = cluster
    policy = pgfast.MLPSoftmax(4, 2, hidden=(8,))
    theta = policy.init(np.random.default_rng(0))
    local = pgfast.rollout(pgfast.make_vec("CartPole-v1", 6), policy, theta, 100,
                           np.random.default_rng(1))
    env = RayVecEnv("CartPole-v1", 6, workers=2, cpus_per_worker=0.5)
    nodes = [node for _, node in env.placement]
    assert len(set(nodes)) == 2   # one block per node
    remote = pgfast.rollout(env, policy, theta, 100, np.random.default_rng(1))
    cluster.remove_node(worker)   # the worker node goes away with its actor
    survived = pgfast.rollout(env, policy, theta, 100, np.random.default_rng(1))
    assert len({node for _, node in env.placement}) == 1
    for ro in (remote, survived):
        for name in FIELDS:
            np.testing.assert_array_equal(getattr(ro, name), getattr(local, name), name)
    env.close()
