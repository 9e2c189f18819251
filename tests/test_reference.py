"""pgfast.reference on its own: identities the formulas imply and hand-computed values
(the kernels are compared with it in test_returns, test_gradients and test_policies)."""
import numpy as np
import pytest

import pgfast
from pgfast import reference as ref


def test_returns_by_hand():
    r = [1.0, 2.0, 3.0, 4.0]
    term = [False, True, False, False]
    np.testing.assert_allclose(ref.reward_to_go(r, 0.5, term), [2.0, 2.0, 5.0, 4.0])
    np.testing.assert_allclose(ref.discount_powers(term, None, 0.5), [1.0, 0.5, 1.0, 0.5])
    returns, lengths = ref.episode_stats(r, term)
    np.testing.assert_array_equal(returns, [3.0])
    np.testing.assert_array_equal(lengths, [2])


def test_gae_identities():
    rng = np.random.default_rng(0)
    r, v, final = (rng.standard_normal((30, 3)) for _ in range(3))
    term, trunc = rng.random((30, 3)) < 0.1, rng.random((30, 3)) < 0.1
    # V(s_{t+1}) is the next row's value within an episode, the final state's at its end
    nv = np.where(term | trunc, final, np.vstack((v[1:], final[-1:])))
    np.testing.assert_allclose(ref.gae(r, v, nv, 0.9, 1.0, term, trunc),
                               ref.reward_to_go(r, 0.9, term, trunc, nv) - v, atol=1e-12)
    np.testing.assert_allclose(ref.gae(r, v, nv, 0.9, 0.0, term, trunc),
                               r + 0.9 * (1 - term) * nv - v, atol=1e-12)


def test_gradient_references_agree_with_each_other():
    rng = np.random.default_rng(1)
    scores, rewards = rng.standard_normal((20, 2, 3)), rng.standard_normal((20, 2))
    term = rng.random((20, 2)) < 0.2
    terms = ref.likelihood_ratio_terms(scores, rewards, 0.9, term, mode="reward_to_go")
    assert terms.shape == (int(term.sum() + (~term[-1]).sum()), 3)
    np.testing.assert_allclose(
        ref.likelihood_ratio_gradient(scores, rewards, 0.9, term, mode="reward_to_go"),
        terms.mean(axis=0))
    a, y = rng.standard_normal((4, 6, 3)), rng.standard_normal((4, 6))
    np.testing.assert_allclose(ref.regression_gradient(a, y),
                               pgfast.regression_gradient(a, y), atol=1e-12)


@pytest.mark.parametrize("policy", [pgfast.MLPSoftmax(3, 4, hidden=(5,)),
                                    pgfast.LinearGaussian(3, 2, log_std=[-0.5, 0.2],
                                                          learn_std=False)])
def test_policy_references(policy):
    rng = np.random.default_rng(2)
    theta = 0.5 * rng.standard_normal(policy.n_params)
    obs = rng.standard_normal((5, 3))
    np.testing.assert_allclose(ref.kl(policy, theta, theta, obs), 0.0, atol=1e-12)
    F = ref.fisher(policy, theta, obs)
    np.testing.assert_allclose(F, F.T, atol=1e-10)
    assert np.linalg.eigvalsh(F).min() > -1e-8
    if policy.discrete:   # the probabilities of all actions sum to one
        lp = np.stack([ref.log_prob(policy, theta, obs, np.full(5, a)) for a in range(4)])
        np.testing.assert_allclose(np.exp(lp).sum(axis=0), 1.0)
        assert np.all(ref.entropy(policy, theta, obs) <= np.log(4) + 1e-12)
    else:
        np.testing.assert_allclose(ref.entropy(policy, theta, obs),
                                   np.sum([-0.5, 0.2]) + 1 + np.log(2 * np.pi))
