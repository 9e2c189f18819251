"""pgfast.integrations against the code they replace: Stable-Baselines3's own
compute_returns_and_advantage, and CleanRL's ppo.py advantage loop (written out
here in torch as ppo.py has it)."""
import numpy as np
import pytest

from pgfast import reference

GAMMA, LAM = 0.99, 0.95


# --------------------------------------------------------------------------- Stable-Baselines3

def sb3_buffers():
    pytest.importorskip("stable_baselines3", reason="Stable-Baselines3 not installed")
    from stable_baselines3.common import buffers

    from pgfast.integrations import sb3
    return buffers, sb3


def fill(buf, rng):
    T, B = buf.buffer_size, buf.n_envs
    buf.rewards[:] = rng.standard_normal((T, B))
    buf.values[:] = rng.standard_normal((T, B))
    buf.episode_starts[:] = rng.random((T, B)) < 0.1
    buf.full = True


@pytest.mark.parametrize("kind", ["RolloutBuffer", "DictRolloutBuffer"])
@pytest.mark.parametrize("gamma, lam", [(GAMMA, LAM), (1.0, 1.0), (0.9, 0.0)])
def test_sb3_buffer_matches_sb3(kind, gamma, lam):
    buffers, sb3 = sb3_buffers()
    import torch
    from gymnasium import spaces

    box = spaces.Box(-1, 1, (3,))
    obs_space = spaces.Dict({"x": box}) if kind == "DictRolloutBuffer" else box
    args = (64, obs_space, spaces.Discrete(2))
    kwargs = dict(gae_lambda=lam, gamma=gamma, n_envs=3)
    theirs, ours = getattr(buffers, kind)(*args, **kwargs), getattr(sb3, kind)(*args, **kwargs)
    for buf in (theirs, ours):
        fill(buf, np.random.default_rng(0))
    last_values = torch.tensor([[0.5], [-1.0], [2.0]])
    dones = np.array([True, False, False])
    theirs.compute_returns_and_advantage(last_values, dones)
    ours.compute_returns_and_advantage(last_values, dones)
    assert ours.advantages.dtype == np.float32 and ours.returns.dtype == np.float32
    np.testing.assert_allclose(ours.advantages, theirs.advantages, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.returns, theirs.returns, rtol=1e-5, atol=1e-5)


def test_sb3_buffer_refuses_nan():
    buffers, sb3 = sb3_buffers()
    import torch
    from gymnasium import spaces

    buf = sb3.RolloutBuffer(8, spaces.Box(-1, 1, (3,)), spaces.Discrete(2), n_envs=2)
    fill(buf, np.random.default_rng(0))
    buf.values[3, 1] = np.nan
    with pytest.raises(ValueError, match="^values: expected finite values"):
        buf.compute_returns_and_advantage(torch.zeros(2, 1), np.zeros(2, bool))


@pytest.mark.slow
def test_sb3_ppo_cartpole_with_time_limits():
    """PPO(..., rollout_buffer_class=...) runs, and every rollout's advantages equal
    SB3's on the same buffer, time-limit bootstraps included."""
    buffers, sb3 = sb3_buffers()
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    seen = []

    class Checked(sb3.RolloutBuffer):
        def compute_returns_and_advantage(self, last_values, dones):
            buffers.RolloutBuffer.compute_returns_and_advantage(self, last_values, dones)
            theirs = self.advantages.copy(), self.returns.copy()
            super().compute_returns_and_advantage(last_values, dones)
            seen.append((theirs, (self.advantages.copy(), self.returns), self.rewards.copy()))

    env = make_vec_env("CartPole-v1", n_envs=2, seed=0, env_kwargs={"max_episode_steps": 15})
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu",
                rollout_buffer_class=Checked)
    model.learn(total_timesteps=256)
    assert len(seen) == 2
    # SB3 adds γ V(final observation) to the reward at a time limit (CartPole's is 1)
    assert any(np.any(rewards != 1.0) for _, _, rewards in seen)
    for (adv, ret), (our_adv, our_ret), _ in seen:
        np.testing.assert_allclose(our_adv, adv, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(our_ret, ret, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- CleanRL

def cleanrl_block(rewards, values, dones, next_value, next_done, gamma, gae_lambda):
    """The advantage loop of CleanRL's ppo.py (float32 torch, step by step)."""
    import torch

    num_steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = 0
    for t in reversed(range(num_steps)):
        if t == num_steps - 1:
            nextnonterminal = 1.0 - next_done
            nextvalues = next_value
        else:
            nextnonterminal = 1.0 - dones[t + 1]
            nextvalues = values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
    return advantages, advantages + values


def cleanrl_rollout(rng, T=50, B=4):
    """(rewards, values, terminations, truncations, final_values, next_value) as float32."""
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    terms = rng.random((T, B)) < 0.08
    truncs = ~terms & (rng.random((T, B)) < 0.05)
    return f32(T, B), f32(T, B), terms, truncs, f32(T, B), f32(1, B)


def cleanrl_dones(terms, truncs):
    """CleanRL's storage: dones[t] = next_done when s_t was observed."""
    ended = terms | truncs
    dones = np.zeros_like(ended)
    dones[1:] = ended[:-1]
    return dones.astype(np.float32), ended[-1].astype(np.float32)


def test_cleanrl_gae_matches_the_loop():
    torch = pytest.importorskip("torch", reason="PyTorch not installed")
    from pgfast.integrations.cleanrl import cleanrl_gae

    r, v, terms, truncs, _, nv = cleanrl_rollout(np.random.default_rng(1))
    dones, next_done = cleanrl_dones(terms, truncs)
    t = [torch.from_numpy(a) for a in (r, v, dones, nv, next_done)]
    want_adv, want_ret = cleanrl_block(*t, GAMMA, LAM)
    adv, ret = cleanrl_gae(*t, GAMMA, LAM)
    assert isinstance(adv, torch.Tensor) and adv.dtype == torch.float32
    np.testing.assert_allclose(adv.numpy(), want_adv.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret.numpy(), want_ret.numpy(), rtol=1e-5, atol=1e-5)


def test_cleanrl_gae_numpy_single_env():
    from pgfast.integrations.cleanrl import cleanrl_gae

    r, v, terms, truncs, _, nv = cleanrl_rollout(np.random.default_rng(2), B=1)
    dones, next_done = cleanrl_dones(terms, truncs)
    adv, _ = cleanrl_gae(r[:, 0], v[:, 0], dones[:, 0], nv[0, 0], next_done[0], GAMMA, LAM)
    next_values = np.concatenate((v[1:], nv))
    want = reference.gae(r, v, next_values, GAMMA, LAM, terms | truncs)
    np.testing.assert_allclose(adv, want[:, 0], rtol=1e-5, atol=1e-5)


def test_truncation_aware_gae_bootstraps_at_time_limits():
    from pgfast.integrations.cleanrl import cleanrl_gae, truncation_aware_gae

    r, v, terms, truncs, final, nv = cleanrl_rollout(np.random.default_rng(3))
    assert truncs.any()
    adv, ret = truncation_aware_gae(r, v, nv, terms, truncs, final, GAMMA, LAM)
    next_values = np.where(truncs, final, np.concatenate((v[1:], nv)))
    want = reference.gae(r, v, next_values, GAMMA, LAM, terms, truncs)
    np.testing.assert_allclose(adv, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, want + v, rtol=1e-5, atol=1e-5)
    # without time limits both conventions agree
    dones, next_done = cleanrl_dones(terms, np.zeros_like(truncs))
    np.testing.assert_allclose(
        truncation_aware_gae(r, v, nv, terms, np.zeros_like(truncs), final, GAMMA, LAM)[0],
        cleanrl_gae(r, v, dones, nv, next_done, GAMMA, LAM)[0], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="^final_values: expected shape"):
        truncation_aware_gae(r, v, nv, terms, truncs, final[1:], GAMMA, LAM)
    with pytest.raises(ValueError, match="^next_value: expected one value per env"):
        truncation_aware_gae(r, v, nv[:, 1:], terms, truncs, final, GAMMA, LAM)


# --------------------------------------------------------------------------- examples/torch_reinforce.py

def load_torch_example():
    pytest.importorskip("torch", reason="PyTorch not installed")
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "examples" / "torch_reinforce.py"
    spec = importlib.util.spec_from_file_location("torch_reinforce", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_torch_example_weights_give_the_likelihood_ratio_gradient():
    ex = load_torch_example()
    import gymnasium as gym
    import torch

    torch.manual_seed(0)
    envs = gym.make_vec("CartPole-v1", num_envs=3, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
    obs, _ = envs.reset(seed=0)
    actor = ex.mlp(4, 2, hidden=8)
    batch, _, _ = ex.collect(envs, obs, actor, 60, np.zeros(3))
    assert batch["terminated"].any()
    autograd, ours = ex.check_weights(actor, batch, 0.97)
    assert isinstance(ours, torch.Tensor) and ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), autograd.numpy(), rtol=1e-4,
                               atol=1e-5 * float(autograd.abs().max()))


@pytest.mark.parametrize("reinforce", [False, True])
def test_torch_example_trains(reinforce):
    ex = load_torch_example()
    history = ex.train(iterations=2, reinforce=reinforce, num_envs=2, T=64)
    assert len(history) == 2 and all(np.isfinite(history))


def test_sb3_trains_a_native_env_by_id():
    """SB3 makes its env by id with render_mode="rgb_array": the native env renders."""
    pytest.importorskip("stable_baselines3", reason="Stable-Baselines3 not installed")
    pytest.importorskip("pygame", reason='drawing needs pygame: pip install "pgfast[render]"')
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", "pgfast/CartPole-v1", n_steps=64, batch_size=32, n_epochs=1,
                seed=0, device="cpu")
    model.learn(128)
    assert model.num_timesteps == 128
    env = model.get_env()
    env.reset()
    assert env.render().shape == (400, 600, 3)
