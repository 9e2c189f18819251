"""Training loop, evaluation, checkpoints and the stop rule."""
import numpy as np
import pytest

import pgfast


@pytest.fixture()
def setup():
    problem = pgfast.Problem("CartPole-v1", gamma=0.99, horizon=60)
    policy = pgfast.LinearSoftmax(4, 2)
    return problem, policy


def test_train_is_deterministic_and_records_history(setup):
    problem, policy = setup
    runs = []
    for _ in range(2):
        update = pgfast.TrustRegionUpdate(problem, policy, m=8)
        theta = policy.init(np.random.default_rng(0))
        runs.append(pgfast.train(update, theta, iterations=3, rng=np.random.default_rng(1),
                                 progress=False))
    (a, hist_a), (b, hist_b) = runs
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(hist_a["mean_return"], hist_b["mean_return"])
    assert list(hist_a["iteration"]) == [1, 2, 3]
    assert np.all(np.diff(hist_a["steps"]) > 0) and np.all(np.diff(hist_a["wall_time"]) >= 0)
    assert set(hist_a) == {"iteration", "steps", "wall_time", "mean_return", "kl", "entropy"}


def test_total_steps_and_callback_stop_training(setup):
    problem, policy = setup
    update = pgfast.NaturalPolicyUpdate(problem, policy, m=4)
    theta = policy.init(np.random.default_rng(0))
    _, hist = pgfast.train(update, theta, total_steps=1, rng=np.random.default_rng(0),
                           progress=False)
    assert len(hist["iteration"]) == 1
    seen = []
    _, hist = pgfast.train(update, theta, iterations=10, rng=np.random.default_rng(0),
                           progress=False, callback=lambda i, th, info: seen.append(i) or i < 2)
    assert seen == [1, 2] and len(hist["iteration"]) == 2


@pytest.mark.parametrize("make", [
    lambda p, pol: pgfast.ClampedSurrogateUpdate(p, pol, m=8, advantages="gae",
                                                 optimizer="adam", minibatches=2),
    lambda p, pol: pgfast.TrustRegionUpdate(p, pol, m=8, advantages="gae"),
])
def test_checkpoint_round_trip_resumes_identically(setup, tmp_path, make):
    problem, policy = setup
    theta = policy.init(np.random.default_rng(0))
    straight, hist_straight = pgfast.train(make(problem, policy), theta, iterations=4,
                                           rng=np.random.default_rng(3), progress=False)
    pgfast.train(make(problem, policy), theta, iterations=2, rng=np.random.default_rng(3),
                 progress=False, checkpoint_dir=tmp_path)
    resumed, hist = pgfast.train(make(problem, policy), None, iterations=4,
                                 rng=np.random.default_rng(999), progress=False,
                                 checkpoint_dir=tmp_path, resume=True)
    np.testing.assert_array_equal(resumed, straight)
    np.testing.assert_array_equal(hist["mean_return"], hist_straight["mean_return"])


def test_evaluate_returns_per_episode_returns(setup):
    _, policy = setup
    theta = policy.init(np.random.default_rng(0))
    returns = pgfast.evaluate("CartPole-v1", policy, theta, episodes=7,
                              rng=np.random.default_rng(0))
    assert returns.shape == (7,)
    assert np.all((returns >= 1) & (returns <= 500))
    again = pgfast.evaluate("CartPole-v1", policy, theta, episodes=7, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(returns, again)


def test_train_validates_arguments(setup):
    problem, policy = setup
    update = pgfast.TrustRegionUpdate(problem, policy, m=4)
    theta = policy.init(np.random.default_rng(0))
    with pytest.raises(ValueError, match="iterations"):
        pgfast.train(update, theta, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        pgfast.train(update, theta, iterations=1, rng=np.random.RandomState(0))


def test_ctrl_c_writes_a_checkpoint_before_exiting(setup, tmp_path):
    problem, policy = setup
    update = pgfast.TrustRegionUpdate(problem, policy, m=4)

    def interrupt(iteration, theta, info):
        if iteration == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pgfast.train(update, policy.init(np.random.default_rng(0)), iterations=5,
                     rng=np.random.default_rng(0), progress=False, callback=interrupt,
                     checkpoint_dir=tmp_path)
    theta, saved = pgfast.load_checkpoint(tmp_path, update=update)
    # Update 2 did not finish (its callback was cut): the checkpoint holds update 1,
    # and a resume replays update 2 and its callback.
    assert len(saved["history"]["iteration"]) == 1
    assert theta.shape == (policy.n_params,)


def test_ctrl_c_inside_an_update_resumes_bit_for_bit(setup, tmp_path):
    """An update interrupted after it drew from rng and fitted its value function: the
    checkpoint holds the last finished iteration's state, so resuming gives the
    uninterrupted run's θ and value function exactly."""
    problem, policy = setup

    def make():
        return pgfast.TrustRegionUpdate(problem, policy, m=4,
                                        value_fn=pgfast.LinearValue(4))

    def run(update, **kwargs):
        return pgfast.train(update, policy.init(np.random.default_rng(0)), iterations=5,
                            rng=np.random.default_rng(0), progress=False,
                            checkpoint_dir=tmp_path, **kwargs)[0]

    expected = make()
    theta_expected = run(expected)
    interrupted, calls = make(), []
    real_update = interrupted.update

    def update_then_interrupt(theta, rng):
        calls.append(1)
        result = real_update(theta, rng)   # rng drawn from, baseline refitted
        if len(calls) == 3:
            raise KeyboardInterrupt
        return result

    interrupted.update = update_then_interrupt
    with pytest.raises(KeyboardInterrupt):
        run(interrupted, overwrite=True)   # the folder holds the expected run
    assert len(pgfast.load_checkpoint(tmp_path)[1]["history"]["iteration"]) == 2
    resumed = make()
    theta_resumed = run(resumed, resume=True)
    np.testing.assert_array_equal(theta_resumed, theta_expected)
    np.testing.assert_array_equal(resumed.baseline.params, expected.baseline.params)


# --- BLAS threads, stop-when-solved, periodic checkpoints, SIGTERM ----------------

BLAS_RUN = """
import hashlib, sys, numpy as np, pgfast
limit = None if sys.argv[1] == "none" else 1
problem = pgfast.Problem("CartPole-v1", gamma=0.99)
policy = pgfast.MLPSoftmax(4, 2, hidden=(64, 64))
update = pgfast.TrustRegionUpdate(problem, policy, m=16,
                                  value_fn=pgfast.MLPValue(4, hidden=(64, 64)))
rng = np.random.default_rng(0)
theta, _ = pgfast.train(update, policy.init(rng), iterations=3, rng=rng, progress=False,
                        blas_threads=limit)
print(hashlib.sha256(theta.tobytes() + update.baseline.params.tobytes()).hexdigest())
"""


def _blas_run(tmp_path, threads, limit):
    import os
    import subprocess
    import sys

    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    # From an empty folder, so the installed pgfast is imported, not a checkout's.
    result = subprocess.run([sys.executable, "-c", BLAS_RUN, limit], env=env, cwd=tmp_path,
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_same_seed_same_parameters_with_one_or_two_blas_threads(tmp_path):
    # MLP policy and value function: their GEMMs go through BLAS. train() limits BLAS
    # to one thread, so the environment's thread count does not change a bit.
    assert _blas_run(tmp_path, 1, "1") == _blas_run(tmp_path, 2, "1")


def test_train_restores_the_blas_thread_limits(setup):
    from threadpoolctl import threadpool_info

    problem, policy = setup
    before = [(i["filepath"], i["num_threads"]) for i in threadpool_info()]
    update = pgfast.TrustRegionUpdate(problem, policy, m=4)
    pgfast.train(update, policy.init(np.random.default_rng(0)), iterations=1,
                 rng=np.random.default_rng(0), progress=False)
    assert [(i["filepath"], i["num_threads"]) for i in threadpool_info()] == before


def test_stop_when_solved_stops_at_the_threshold_and_keeps_the_best():
    problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    policy = pgfast.LinearSoftmax(4, 2)
    update = pgfast.TrustRegionUpdate(problem, policy, m=16)
    stop = pgfast.StopWhenSolved(problem, policy, 475, np.random.default_rng(1))
    rng = np.random.default_rng(0)
    theta, hist = pgfast.train(update, policy.init(rng), total_steps=300_000, rng=rng,
                               progress=False, callback=stop)
    assert stop.solved and stop.best_score >= 475
    assert stop.solved_at == (len(hist["iteration"]), int(hist["steps"][-1]))
    assert hist["steps"][-1] < 300_000   # stopped early
    np.testing.assert_array_equal(stop.best_theta, theta)
    iterations, steps, scores = zip(*stop.evaluations)
    assert list(iterations) == list(hist["iteration"]) and scores[-1] == stop.best_score


def test_stop_when_solved_keeps_the_best_when_never_solved(setup):
    problem, policy = setup
    update = pgfast.TrustRegionUpdate(problem, policy, m=4)
    stop = pgfast.StopWhenSolved(problem, policy, 1e9, np.random.default_rng(1), every=2,
                                 episodes=3)
    rng = np.random.default_rng(0)
    pgfast.train(update, policy.init(rng), iterations=6, rng=rng, progress=False,
                 callback=stop)
    assert not stop.solved and [e[0] for e in stop.evaluations] == [2, 4, 6]
    assert stop.best_score == max(e[2] for e in stop.evaluations)
    with pytest.raises(ValueError, match="threshold"):
        pgfast.StopWhenSolved(problem, policy, float("nan"), np.random.default_rng(1))


def test_evaluation_does_not_change_the_training_run(setup):
    problem, policy = setup
    thetas = []
    for callback in (None, pgfast.StopWhenSolved(problem, policy, 1e9,
                                                 np.random.default_rng(5))):
        update = pgfast.TrustRegionUpdate(problem, policy, m=4)
        rng = np.random.default_rng(0)
        thetas.append(pgfast.train(update, policy.init(rng), iterations=3, rng=rng,
                                   progress=False, callback=callback)[0])
    np.testing.assert_array_equal(*thetas)


def test_periodic_checkpoints(setup, tmp_path):
    problem, policy = setup
    update = pgfast.TrustRegionUpdate(problem, policy, m=4)
    seen = []

    def look(iteration, theta, info):
        if (tmp_path / "checkpoint.npz").exists():
            seen.append((iteration, len(pgfast.load_checkpoint(tmp_path)[1]["history"]["steps"])))

    pgfast.train(update, policy.init(np.random.default_rng(0)), iterations=5,
                 rng=np.random.default_rng(0), progress=False, callback=look,
                 checkpoint_dir=tmp_path, checkpoint_every=2)
    # Written once the update and its callback are done (the callback's state is in it).
    assert seen == [(3, 2), (4, 2), (5, 4)]


def test_sigterm_writes_a_checkpoint_like_ctrl_c(setup, tmp_path):
    import os
    import signal

    problem, policy = setup
    update = pgfast.TrustRegionUpdate(problem, policy, m=4)

    def terminate(iteration, theta, info):
        if iteration == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        pgfast.train(update, policy.init(np.random.default_rng(0)), iterations=5,
                     rng=np.random.default_rng(0), progress=False, callback=terminate,
                     checkpoint_dir=tmp_path)
    assert signal.getsignal(signal.SIGTERM) == before
    _, saved = pgfast.load_checkpoint(tmp_path, update=update)
    assert len(saved["history"]["iteration"]) == 1   # update 2's callback was cut


def test_stop_when_solved_needs_the_threshold_with_confidence(setup):
    problem, policy = setup
    theta = policy.init(np.random.default_rng(0))
    spread = np.array([-100.0, -300.0] * 50)   # mean -200, standard error 10
    verdicts = {}
    for confidence in (0.0, 1.0):
        stop = pgfast.StopWhenSolved(problem, policy, -205, np.random.default_rng(0),
                                     confidence=confidence)
        stop.returns = lambda theta, episodes: spread[:episodes]
        verdicts[confidence] = stop(1, theta, {"steps": 10})
        assert stop.evaluations == [(1, 10, -200.0)]
    assert verdicts[0.0] is False and verdicts[1.0] is None   # -200 - 10 < -205
    with pytest.raises(ValueError, match="confidence"):
        pgfast.StopWhenSolved(problem, policy, 0, np.random.default_rng(0), confidence=-1)


def test_stop_when_solved_folds_the_best_with_the_statistics_it_was_evaluated_under():
    problem = pgfast.Problem("MountainCarContinuous-v0", gamma=0.99, normalize_observations=True)
    policy = pgfast.LinearGaussian(2, 1)
    update = pgfast.TrustRegionUpdate(problem, policy, m=4, lam=0.97)   # best before the end
    stop = pgfast.StopWhenSolved(problem, policy, 1e9, np.random.default_rng(1), episodes=2)
    folded = {}

    def callback(iteration, theta, info):
        stop(iteration, theta, info)
        folded[iteration] = problem.obs_normalizer.fold(policy, theta)

    rng = np.random.default_rng(0)
    pgfast.train(update, policy.init(rng), iterations=6, rng=rng, progress=False,
                 callback=callback)
    best = next(i for i, _, score in stop.evaluations if score == stop.best_score)
    assert best < 6   # the statistics moved on after it
    np.testing.assert_array_equal(stop.best_raw_theta, folded[best])
    assert not np.allclose(problem.obs_normalizer.fold(policy, stop.best_theta),
                           stop.best_raw_theta)


@pytest.mark.parametrize("env, policy", [("CartPole-v1", pgfast.LinearSoftmax(4, 2)),
                                         ("Pendulum-v1", pgfast.MLPGaussian(3, 1, hidden=8))])
def test_one_run_on_two_threads_is_the_run_on_one(env, policy):
    """train(num_threads=2) splits each batch's env slots over two threads: the same
    θ and history, bit for bit."""
    runs = []
    for threads in (1, 2):
        problem = pgfast.Problem(env, gamma=0.99, normalize_observations=True)
        update = pgfast.TrustRegionUpdate(problem, policy, m=8)
        rng = np.random.default_rng(0)
        theta, history = pgfast.train(update, policy.init(rng), iterations=4, rng=rng,
                                      progress=False, num_threads=threads)
        assert problem.num_threads == threads
        runs.append((theta, history))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for key in ("steps", "mean_return", "kl", "entropy"):
        np.testing.assert_array_equal(runs[0][1][key], runs[1][1][key])


def test_stop_rule_without_a_threshold_keeps_the_best_and_never_stops(setup):
    problem, policy = setup
    update = pgfast.TrustRegionUpdate(problem, policy, m=4)
    stop = pgfast.StopWhenSolved(problem, policy, None, np.random.default_rng(1), every=2,
                                 episodes=3)
    rng = np.random.default_rng(0)
    _, history = pgfast.train(update, policy.init(rng), iterations=6, rng=rng,
                              progress=False, callback=stop)
    assert len(history["iteration"]) == 6 and not stop.solved
    assert [e[0] for e in stop.evaluations] == [2, 4, 6]
    assert stop.best_score == max(e[2] for e in stop.evaluations)


@pytest.mark.parametrize("update", ["trpo", "ppo"])
def test_a_run_on_threads_is_the_one_thread_run_bit_for_bit(update):
    """MLP TRPO takes its Fisher products by CG and fits an MLP value function on
    minibatches: both split their rows over the threads in blocks fixed by the batch."""
    from pgfast import factory
    config, _ = factory.settings("Pendulum-v1", "mlp", {"update": update, "m": 4,
                                                         "batch_steps": 1000})
    thetas = []
    for threads in (1, 2, 3):
        _, policy, upd = factory.build("Pendulum-v1", "mlp", config)
        assert update == "ppo" or upd.solver == "cg"
        rng = np.random.default_rng(8)
        theta, _ = pgfast.train(upd, policy.init(rng), iterations=3, rng=rng, progress=False,
                                num_threads=threads)
        thetas.append((theta, upd.baseline.params))
    for theta, phi in thetas[1:]:
        np.testing.assert_array_equal(theta, thetas[0][0])
        np.testing.assert_array_equal(phi, thetas[0][1])
