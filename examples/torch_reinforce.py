"""REINFORCE and actor-critic in plain PyTorch, with pgfast computing the weights.

    python examples/torch_reinforce.py                 # actor-critic with GAE
    python examples/torch_reinforce.py --reinforce     # REINFORCE, reward-to-go weights

PyTorch tensors go into pgfast.reward_to_go, discount_powers and gae and come back
as tensors of the same dtype (no graph: pgfast's results are constants to autograd,
as advantages should be). The surrogate loss −Σ_t w_t log π(a_t | s_t) / N with
w_t = γ^(k−1) r_togo(k) has the gradient of pgfast.likelihood_ratio_gradient(...,
mode="reward_to_go"): :func:`check_weights` compares the two.
"""
import argparse

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

import pgfast


def mlp(n_in, n_out, hidden=64):
    return torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.Tanh(),
                               torch.nn.Linear(hidden, n_out))


def collect(envs, obs, actor, T, running):
    """T steps of every env: float32 tensors (T, B, ...), the observation after them
    and the returns of the episodes that ended (`running` carries unfinished ones).

    Same-step autoreset: at an episode's end the env returns the next episode's first
    observation and keeps the final one in infos["final_obs"], which the critic needs
    where a time limit cut the episode.
    """
    B = envs.num_envs
    rec = {k: [] for k in ("obs", "actions", "rewards", "terminated", "truncated", "next_obs")}
    finished = []
    for _ in range(T):
        x = torch.as_tensor(obs, dtype=torch.float32)
        with torch.no_grad():
            actions = torch.distributions.Categorical(logits=actor(x)).sample()
        obs, rewards, term, trunc, infos = envs.step(actions.numpy())
        running += rewards
        finished.extend(running[term | trunc])
        running[term | trunc] = 0.0
        true_next = obs.copy()
        for b in np.flatnonzero(infos.get("_final_obs", np.zeros(B, bool))):
            true_next[b] = infos["final_obs"][b]
        for key, value in (("obs", x), ("actions", actions), ("rewards", rewards),
                           ("terminated", term), ("truncated", trunc), ("next_obs", true_next)):
            rec[key].append(torch.as_tensor(value))
    batch = {k: torch.stack(v) for k, v in rec.items()}
    batch["rewards"] = batch["rewards"].float()
    batch["next_obs"] = batch["next_obs"].float()
    return batch, obs, finished


def n_trajectories(terminated, truncated):
    """Episodes in the buffer: those that end, plus each column's unfinished one."""
    ends = terminated | truncated
    return int(ends.sum() + (~ends[-1]).sum())


def reinforce_loss(actor, batch, gamma):
    """−Σ_t γ^(k−1) r_togo(k) log π(a_t | s_t) / N: the book's reward-to-go estimator."""
    term, trunc = batch["terminated"], batch["truncated"]
    weights = (pgfast.discount_powers(term, trunc, gamma).float()
               * pgfast.reward_to_go(batch["rewards"], gamma, term, trunc))
    logp = torch.distributions.Categorical(logits=actor(batch["obs"])).log_prob(batch["actions"])
    return -(weights * logp).sum() / n_trajectories(term, trunc)


def actor_critic_loss(actor, critic, batch, gamma, lam):
    """Policy loss with GAE advantages (bootstrapped at time limits) plus the value loss."""
    values = critic(batch["obs"]).squeeze(-1)
    with torch.no_grad():
        next_values = critic(batch["next_obs"]).squeeze(-1)
    adv = pgfast.gae(batch["rewards"], values, next_values, gamma, lam,
                     batch["terminated"], batch["truncated"])
    returns = adv + values.detach()
    logp = torch.distributions.Categorical(logits=actor(batch["obs"])).log_prob(batch["actions"])
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    return -(adv * logp).mean() + 0.5 * ((values - returns) ** 2).mean()


def check_weights(actor, batch, gamma):
    """(autograd gradient of reinforce_loss, pgfast.likelihood_ratio_gradient) for the
    actor's parameters, from per-step scores ∇θ log π(a_t | s_t) by torch.func."""
    params = {k: v.detach() for k, v in actor.named_parameters()}

    def log_prob(p, s, a):
        logits = torch.func.functional_call(actor, p, (s,))
        return torch.log_softmax(logits, -1).gather(-1, a[None])[0]

    scores = torch.func.vmap(torch.func.grad(log_prob), in_dims=(None, 0, 0))(
        params, batch["obs"].flatten(0, 1), batch["actions"].flatten())
    T, B = batch["rewards"].shape
    scores = torch.cat([g.reshape(T, B, -1) for g in scores.values()], dim=-1)
    ours = pgfast.likelihood_ratio_gradient(scores, batch["rewards"], gamma, batch["terminated"],
                                            batch["truncated"], mode="reward_to_go")
    actor.zero_grad()
    (-reinforce_loss(actor, batch, gamma)).backward()
    autograd = torch.cat([p.grad.flatten() for p in actor.parameters()])
    return autograd, ours


def train(iterations=100, reinforce=False, num_envs=8, T=128, gamma=0.99, lam=0.95, seed=0):
    """Train on CartPole-v1; returns the mean return of the episodes that ended in each
    iteration (nan if none did)."""
    torch.manual_seed(seed)
    envs = gym.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})
    obs, _ = envs.reset(seed=seed)
    actor, critic = mlp(4, 2), mlp(4, 1)
    opt = torch.optim.Adam([*actor.parameters(), *critic.parameters()], lr=3e-3)
    history, running = [], np.zeros(num_envs)
    for _ in range(iterations):
        batch, obs, finished = collect(envs, obs, actor, T, running)
        loss = (reinforce_loss(actor, batch, gamma) if reinforce
                else actor_critic_loss(actor, critic, batch, gamma, lam))
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(np.mean(finished)) if finished else float("nan"))
    envs.close()
    return history


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reinforce", action="store_true")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for i, ret in enumerate(train(args.iterations, args.reinforce, seed=args.seed)):
        if i % 10 == 0 or i == args.iterations - 1:
            print(f"iteration {i:4d}  mean episode return {ret:7.1f}")
