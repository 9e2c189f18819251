import importlib.machinery

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pgfast
from pgfast import reference as ref

LAYOUTS = {
    "no_ends": lambda T, B, rng: (np.zeros((T, B), bool), np.zeros((T, B), bool)),
    "one_end": lambda T, B, rng: (
        np.eye(T, B, k=-(T // 2), dtype=bool) | np.eye(T, B, k=-(T // 3), dtype=bool),
        np.zeros((T, B), bool),
    ),
    "many_ends": lambda T, B, rng: (rng.random((T, B)) < 0.2, rng.random((T, B)) < 0.1),
    "truncated_last_step": lambda T, B, rng: (
        rng.random((T, B)) < 0.1,
        np.vstack([np.zeros((T - 1, B), bool), np.ones((1, B), bool)]),
    ),
    "both_flags": lambda T, B, rng: (rng.random((T, B)) < 0.3,) * 2,
}


def make_case(layout, T=37, B=5, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    term, trunc = LAYOUTS[layout](T, B, rng)
    rewards = rng.normal(size=(T, B)).astype(dtype)
    values = rng.normal(size=(T, B)).astype(dtype)
    next_values = rng.normal(size=(T, B)).astype(dtype)
    return rewards, values, next_values, term, trunc


def variants(x, kind):
    """The same data as 2-D, 1-D (first column), read-only or a strided view."""
    if kind == "2d":
        return x
    if kind == "1d":
        return np.ascontiguousarray(x[:, 0])
    if kind == "readonly":
        y = x.copy()
        y.flags.writeable = False
        return y
    if kind == "strided":
        wide = np.repeat(x, 2, axis=-1)
        return wide[..., ::2]
    raise AssertionError(kind)


KINDS = ["2d", "1d", "readonly", "strided"]
GRID = pytest.mark.parametrize("layout", sorted(LAYOUTS))
DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32])


def tolerance(dtype):
    return dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-6, atol=2e-6)


def test_kernels_are_compiled_modules():
    from pgfast import _returns

    assert isinstance(_returns.__loader__, importlib.machinery.ExtensionFileLoader)
    assert _returns.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


@GRID
@DTYPES
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bootstrap", [False, True])
def test_reward_to_go_matches_reference(layout, dtype, kind, bootstrap):
    r, _, nv, term, trunc = (variants(a, kind) for a in make_case(layout, dtype=dtype))
    nv = nv if bootstrap else None
    got = pgfast.reward_to_go(r, 0.9, terminated=term, truncated=trunc, next_values=nv)
    assert got.dtype == dtype and got.shape == np.shape(r)
    want = ref.reward_to_go(r, 0.9, term, trunc, nv)
    np.testing.assert_allclose(got, want, **tolerance(dtype))


@GRID
@DTYPES
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lam", [0.0, 0.95, 1.0])
def test_gae_matches_reference(layout, dtype, kind, lam):
    r, v, nv, term, trunc = (variants(a, kind) for a in make_case(layout, dtype=dtype))
    got = pgfast.gae(r, v, nv, 0.99, lam, terminated=term, truncated=trunc)
    assert got.dtype == dtype and got.shape == np.shape(r)
    want = ref.gae(r, v, nv, 0.99, lam, term, trunc)
    np.testing.assert_allclose(got, want, **tolerance(dtype))


@GRID
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0])
def test_discount_powers_matches_reference(layout, kind, gamma):
    _, _, _, term, trunc = (variants(a, kind) for a in make_case(layout))
    got = pgfast.discount_powers(term, trunc, gamma)
    np.testing.assert_allclose(got, ref.discount_powers(term, trunc, gamma), rtol=1e-12)


@GRID
@DTYPES
@pytest.mark.parametrize("kind", KINDS)
def test_episode_stats_matches_reference(layout, dtype, kind):
    r, _, _, term, trunc = (variants(a, kind) for a in make_case(layout, dtype=dtype))
    returns, lengths = pgfast.episode_stats(r, term, trunc)
    want_returns, want_lengths = ref.episode_stats(r, term, trunc)
    np.testing.assert_allclose(returns, want_returns, **tolerance(dtype))
    np.testing.assert_array_equal(lengths, want_lengths)
    assert lengths.dtype == np.int64


@GRID
def test_gae_lambda_one_is_reward_to_go_minus_values(layout):
    # The identity telescopes only where V(s_{t+1}) is the next step's V(s_t):
    # consistent buffers, as a rollout produces them.
    r, v, nv, term, trunc = make_case(layout)
    within = ~(term | trunc)[:-1]
    nv[:-1][within] = v[1:][within]
    adv = pgfast.gae(r, v, nv, 0.97, 1.0, terminated=term, truncated=trunc)
    rtg = pgfast.reward_to_go(r, 0.97, terminated=term, truncated=trunc, next_values=nv)
    np.testing.assert_allclose(adv, rtg - v, rtol=1e-12, atol=1e-12)


@GRID
def test_gae_lambda_zero_is_td_error(layout):
    r, v, nv, term, trunc = make_case(layout)
    adv = pgfast.gae(r, v, nv, 0.97, 0.0, terminated=term, truncated=trunc)
    np.testing.assert_allclose(adv, r + 0.97 * (1 - term) * nv - v, rtol=1e-12, atol=1e-12)


def test_golden_values_by_hand():
    # One stream, gamma = 0.5: an episode terminated after step 1, then one
    # truncated after step 3 (bootstrap with V = 8), then one unfinished (V = 2).
    r = [1.0, 2.0, 4.0, 1.0, 3.0]
    term = [0, 1, 0, 0, 0]
    trunc = [0, 0, 0, 1, 0]
    nv = [5.0, 5.0, 5.0, 8.0, 2.0]
    np.testing.assert_allclose(
        pgfast.reward_to_go(r, 0.5, term, trunc, next_values=nv), [2.0, 2.0, 6.5, 5.0, 4.0]
    )
    np.testing.assert_allclose(pgfast.reward_to_go(r, 0.5, term, trunc), [2.0, 2.0, 4.5, 1.0, 3.0])
    np.testing.assert_allclose(pgfast.discount_powers(term, trunc, 0.5), [1, 0.5, 1, 0.5, 1])
    returns, lengths = pgfast.episode_stats(r, term, trunc)
    np.testing.assert_array_equal(returns, [3.0, 5.0])
    np.testing.assert_array_equal(lengths, [2, 2])
    # delta = r + 0.5 * (1 - term) * nv - v with v = 0; A_t = delta_t + 0.25 A_{t+1}
    deltas = np.array([3.5, 2.0, 6.5, 5.0, 4.0])
    want = [3.5 + 0.25 * 2.0, 2.0, 6.5 + 0.25 * 5.0, 5.0, 4.0]
    np.testing.assert_allclose(pgfast.gae(r, np.zeros(5), nv, 0.5, 0.5, term, trunc), want)
    assert deltas[1] == want[1]


def test_book_reward_to_go_times_discount_is_absolute_discounting():
    # R(tau, k) = gamma^(k-1) r_togo(k) = sum_{l >= k} gamma^(l-1) r_l
    rng = np.random.default_rng(3)
    r = rng.normal(size=12)
    gamma = 0.8
    absolute = [sum(gamma**l * r[l] for l in range(k, 12)) for k in range(12)]
    term = np.zeros(12, bool)
    got = pgfast.discount_powers(term, None, gamma) * pgfast.reward_to_go(r, gamma)
    np.testing.assert_allclose(got, absolute, rtol=1e-12)


def test_integer_and_list_inputs_are_converted():
    got = pgfast.reward_to_go([1, 2, 3], 1, terminated=[0, 0, 1])
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [6.0, 5.0, 3.0])


def test_empty_buffers_give_empty_results():
    assert pgfast.reward_to_go(np.zeros(0), 0.9).shape == (0,)
    assert pgfast.gae(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)), 0.9, 0.9).shape == (0, 3)
    assert pgfast.discount_powers(np.zeros(0, bool), None, 0.9).shape == (0,)
    returns, lengths = pgfast.episode_stats(np.zeros((0, 2)), np.zeros((0, 2), bool))
    assert returns.shape == lengths.shape == (0,)


def test_out_is_written_in_place():
    r, v, nv, term, trunc = make_case("many_ends")
    out = np.full(r.shape, np.nan)
    got = pgfast.gae(r, v, nv, 0.9, 0.9, term, trunc, out=out)
    assert got is out
    np.testing.assert_allclose(out, ref.gae(r, v, nv, 0.9, 0.9, term, trunc), rtol=1e-12)
    with pytest.raises(ValueError, match="out"):
        pgfast.reward_to_go(r, 0.9, out=np.empty((3, 3)))
    with pytest.raises(ValueError, match="out"):
        pgfast.reward_to_go(r, 0.9, out=np.empty(r.shape, np.float32))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: pgfast.reward_to_go(np.ones(3), 1.5), "gamma"),
        (lambda: pgfast.reward_to_go(np.ones(3), -0.1), "gamma"),
        (lambda: pgfast.reward_to_go(np.ones(3), float("nan")), "gamma"),
        (lambda: pgfast.gae(np.ones(3), np.ones(3), np.ones(3), 0.9, 1.01), "lam"),
        (lambda: pgfast.reward_to_go(np.ones((2, 2, 2)), 0.9), "rewards"),
        (lambda: pgfast.reward_to_go(np.float64(1.0), 0.9), "rewards"),
        (lambda: pgfast.reward_to_go([1.0, np.nan], 0.9), "rewards"),
        (lambda: pgfast.reward_to_go([1.0, np.inf], 0.9), "rewards"),
        (lambda: pgfast.reward_to_go(np.ones(3), 0.9, terminated=np.ones(4, bool)), "terminated"),
        (lambda: pgfast.reward_to_go(np.ones(3), 0.9, truncated=[0, 2, 0]), "truncated"),
        (lambda: pgfast.reward_to_go(np.ones(3), 0.9, terminated=[0, 0.5, 0]), "terminated"),
        (lambda: pgfast.reward_to_go(np.ones(3), 0.9, next_values=np.ones(2)), "next_values"),
        (lambda: pgfast.reward_to_go(np.ones(3), 0.9, next_values=[1, np.nan, 1]), "next_values"),
        (lambda: pgfast.gae(np.ones(3), np.ones(2), np.ones(3), 0.9, 0.9), "values"),
        (lambda: pgfast.gae(np.ones(3), [1, np.inf, 1], np.ones(3), 0.9, 0.9), "values"),
        (lambda: pgfast.gae(np.ones((3, 2)), np.ones(3), np.ones(3), 0.9, 0.9), "values"),
        (lambda: pgfast.discount_powers(np.zeros((2, 2, 2), bool), None, 0.9), "terminated"),
        (lambda: pgfast.episode_stats(np.ones(3), [1, 0]), "terminated"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: pgfast.reward_to_go(np.ones(3), "0.9"), "gamma"),
        (lambda: pgfast.reward_to_go(["a", "b"], 0.9), "rewards"),
        (lambda: pgfast.reward_to_go(np.ones(3, complex), 0.9), "rewards"),
        (lambda: pgfast.reward_to_go(np.ones(3), 0.9, terminated=["x", "y", "z"]), "terminated"),
        (lambda: pgfast.episode_stats(np.ones(3), None), "terminated"),
    ],
)
def test_wrong_types_raise_type_error_naming_the_argument(call, match):
    with pytest.raises(TypeError, match=match):
        call()


@st.composite
def buffers(draw):
    T = draw(st.integers(0, 40))
    B = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    p_term = draw(st.floats(0, 1))
    p_trunc = draw(st.floats(0, 1))
    one_d = draw(st.booleans())
    rng = np.random.default_rng(seed)
    shape = (T,) if one_d else (T, B)
    arrays = [rng.normal(scale=10, size=shape) for _ in range(3)]
    flags = [rng.random(shape) < p_term, rng.random(shape) < p_trunc]
    return (*arrays, *flags)


@settings(max_examples=150, deadline=None)
@given(buffers(), st.floats(0, 1), st.floats(0, 1))
def test_property_all_kernels_match_reference(buf, gamma, lam):
    r, v, nv, term, trunc = buf
    tol = dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        pgfast.reward_to_go(r, gamma, term, trunc, next_values=nv),
        ref.reward_to_go(r, gamma, term, trunc, nv), **tol)
    np.testing.assert_allclose(
        pgfast.gae(r, v, nv, gamma, lam, term, trunc),
        ref.gae(r, v, nv, gamma, lam, term, trunc), **tol)
    np.testing.assert_allclose(
        pgfast.discount_powers(term, trunc, gamma), ref.discount_powers(term, trunc, gamma), **tol)
    got, want = pgfast.episode_stats(r, term, trunc), ref.episode_stats(r, term, trunc)
    np.testing.assert_allclose(got[0], want[0], **tol)
    np.testing.assert_array_equal(got[1], want[1])
