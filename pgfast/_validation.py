"""Input checks shared by every public wrapper: kernels trust, wrappers check.

Each helper names the argument it checks, so a user reads
"rewards: expected ..., got ..." rather than a traceback from inside a kernel.
"""
from __future__ import annotations

import inspect
import numbers
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def float_dtype(*arrays) -> np.dtype:
    """float32 when every given float array is float32, else float64."""
    given = False
    for a in arrays:
        if a is not None:
            if (a.dtype if type(a) is np.ndarray else _dtype_of(a)) != _FLOAT32:
                return _FLOAT64
            given = True
    return _FLOAT32 if given else _FLOAT64


# dtypes as objects: comparing with np.float64 itself converts it on every call
_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)
_BOOL, _UINT8 = np.dtype(np.bool_), np.dtype(np.uint8)

# Below this many values one isfinite pass is cheaper than the sum's error state.
_SMALL = 4096


def _dtype_of(x):
    try:
        return np.asarray(x).dtype
    except (ValueError, TypeError):   # ragged lists: the argument's own check names them
        return None


def as_array(x, name: str) -> np.ndarray:
    """np.asarray(x), a ragged nested list refused by name rather than by NumPy's
    "setting an array element with a sequence"."""
    try:
        return np.asarray(x)
    except (ValueError, TypeError):
        raise ValueError(f"{name}: expected a rectangular array, got nested sequences of "
                         f"different lengths") from None


def copy_nbytes(x, dtype) -> int:
    """Bytes that ``np.ascontiguousarray(x, dtype)`` allocates: none for such an array
    already, else every element the array shows. A broadcast (stride-0) or strided view
    of 2**31 rows holds a few bytes and copies gigabytes; this counts the gigabytes."""
    if not isinstance(x, np.ndarray):
        return 0   # a list or scalar: its values are held already, the copy is no larger
    if x.dtype == dtype and x.flags.c_contiguous:
        return 0
    return x.size * np.dtype(dtype).itemsize


def check_work_memory(what: str, result_bytes: int, inputs) -> None:
    """Refuse, before any copy, a call whose input copies (``inputs``: (name, array,
    dtype) triples) plus ``result_bytes`` exceed the memory available, naming the input
    with the largest copy (the first input when none is copied)."""
    copies = [copy_nbytes(x, dtype) for _, x, dtype in inputs]
    total = result_bytes + sum(copies)
    if total >= _SMALL_ALLOCATION:
        check_allocation(total, inputs[copies.index(max(copies))][0], what)


def _all_finite(arr) -> bool:
    if arr.size <= _SMALL:
        return bool(np.isfinite(arr).all())
    # A NaN or infinity makes the sum non-finite, so a finite sum (one pass, no
    # temporary) clears the array; only an overflowing sum needs the full check.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(arr.sum()):
            return True
    return bool(np.isfinite(arr).all())


def check_finite(arr: np.ndarray, name: str) -> np.ndarray:
    """`arr` unchanged; a ValueError naming it when it holds a NaN or infinity."""
    if not _all_finite(arr):
        raise ValueError(f"{name}: expected finite values, found NaN or infinity")
    return arr


def as_float_array(x, name: str, dtype=_FLOAT64, ndim=None, finite=True) -> np.ndarray:
    """C-contiguous float array of `dtype`, converting integers and strided views.

    ``finite=False`` leaves the values unread, for a kernel whose result shows any
    NaN or infinity among them (the caller then names them with check_finite).
    """
    ready = type(x) is np.ndarray and x.dtype == dtype and x.flags.c_contiguous and x.ndim
    if ready:
        arr = x   # the common case: nothing to convert or ask of the dtype
    else:
        try:
            arr = np.asarray(x)
        except ValueError:   # ragged nested lists
            arr = as_array(x, name)
        except Exception as exc:  # objects NumPy cannot read at all
            raise TypeError(f"{name}: expected an array of numbers, "
                            f"got {type(x).__name__}") from exc
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
        ):
            raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
        if np.issubdtype(arr.dtype, np.complexfloating):
            raise TypeError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    if ndim is not None:
        allowed = (ndim,) if type(ndim) is int else ndim
        if arr.ndim not in allowed:
            want = " or ".join(str(n) for n in allowed)
            raise ValueError(f"{name}: expected a {want}-D array, got shape {arr.shape}")
    if not ready:   # (0-D arrays come out 1-D)
        copied = copy_nbytes(arr, dtype)
        if copied >= _SMALL_ALLOCATION:   # (the message is only formatted for large copies)
            check_allocation(copied, name, f"a contiguous {np.dtype(dtype)} copy of shape "
                                           f"{arr.shape}")
        arr = np.ascontiguousarray(arr, dtype=dtype)
    return check_finite(arr, name) if finite else arr


def as_flags(x, name: str, shape: tuple) -> np.ndarray:
    """Episode-boundary flags as a C-contiguous uint8 0/1 array of `shape`."""
    if x is None:
        return np.zeros(shape, dtype=np.uint8)
    if type(x) is np.ndarray and x.dtype == _BOOL and x.shape == shape \
            and x.flags.c_contiguous:
        return x.view(_UINT8)   # the common case: nothing to check or convert
    arr = as_array(x, name)
    if arr.shape != shape:
        raise ValueError(f"{name}: expected shape {shape} (that of rewards), got {arr.shape}")
    if arr.dtype != np.bool_:
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise TypeError(f"{name}: expected booleans, got dtype {arr.dtype}")
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name}: expected booleans or 0/1 values, found other values")
        arr = arr != 0
    return np.ascontiguousarray(arr).view(np.uint8)


def check_unit_interval(x, name: str) -> float:
    """A real number in [0, 1] (discount factors, GAE lambda)."""
    if type(x) is not float and (isinstance(x, bool) or not isinstance(x, numbers.Real)):
        raise TypeError(f"{name}: expected a real number in [0, 1], got {type(x).__name__}")
    x = float(x)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"{name}: expected a value in [0, 1], got {x}")
    return x


# Counts beyond this (2**62) cannot be served by any machine, and would overflow
# C's 64-bit sizes once multiplied: refused with a ValueError, never OverflowError.
MAX_COUNT = 1 << 62


# Loops that repeat work on one batch (PPO epochs, TRPO backtracks, CG steps, value
# fits) stop here: beyond ten thousand passes one update takes minutes to hours and
# has long stopped changing θ.
MAX_REPEATS = 10_000


def check_positive_int(x, name: str, minimum: int = 1, maximum: int = MAX_COUNT) -> int:
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {type(x).__name__}")
    value = int(x)
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    if value > maximum:
        raise ValueError(f"{name}: expected an integer <= {maximum}, got {value}")
    return value


def available_memory() -> int:
    """Bytes of memory this process can still get: the machine's MemAvailable (else its
    physical memory), less where the process's address-space limit (``ulimit -v``) or
    its cgroup's memory limit (a container's) is lower."""
    limits = [_machine_memory()]
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            limits.append(soft - _proc_status_bytes("VmSize:"))
    except (ImportError, OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            cap = f.read().strip()
        if cap != "max":
            with open("/sys/fs/cgroup/memory.current") as f:
                limits.append(int(cap) - int(f.read()))
    except (OSError, ValueError):
        pass
    return max(0, min(limits))


def _machine_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return MAX_COUNT


def _proc_status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


_SMALL_ALLOCATION = 1 << 28   # 256 MiB


def check_allocation(n_bytes: int, name: str, what: str) -> None:
    """Refuse, naming the argument, an allocation that this machine cannot serve
    (rather than starting work that allocates until the process is killed)."""
    if n_bytes < _SMALL_ALLOCATION:   # every machine serves it: skip reading /proc
        return
    # An eighth stays free: a call that takes all the memory there is starves the rest
    # of the process and the machine (or is killed) rather than finishing.
    limit = available_memory() * 7 // 8
    if n_bytes > limit:
        raise ValueError(f"{name}: {what} needs {n_bytes / 2**30:.3g} GiB, more than the "
                         f"{limit / 2**30:.3g} GiB of memory available (7/8 of what is free)")


def check_positive_float(x, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name}: expected a positive number, got {type(x).__name__}")
    x = float(x)
    if not (np.isfinite(x) and x > 0.0):
        raise ValueError(f"{name}: expected a positive finite number, got {x}")
    return x


def check_finite_float(x, name: str, minimum: float = -np.inf) -> float:
    """A finite real number >= `minimum` (bools refused, as everywhere)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name}: expected a finite number, got {type(x).__name__}")
    x = float(x)
    if not (np.isfinite(x) and x >= minimum):
        bound = "" if minimum == -np.inf else f" >= {minimum:g}"
        raise ValueError(f"{name}: expected a finite number{bound}, got {x}")
    return x


def check_interval(low, high, name: str) -> tuple[float, float]:
    """Finite bounds low < high (a clipping range)."""
    low, high = check_finite_float(low, name), check_finite_float(high, name)
    if not low < high:
        raise ValueError(f"{name}: expected low < high, got ({low}, {high})")
    return low, high


def check_bool(x, name: str) -> bool:
    """A bool (or NumPy bool): a flag given "no", 0.5 or None is refused, not read as truthy."""
    if not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(x).__name__}")
    return bool(x)


def check_seed(seed, num_envs: int):
    """A seed for num_envs env slots: None, an int >= 0, a SeedSequence, or a list or
    tuple of num_envs ints >= 0 (one per slot)."""
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, (list, tuple)):
        if len(seed) != num_envs:
            raise ValueError(f"seed: expected {num_envs} seeds, got {len(seed)}")
        return [_seed_int(s) for s in seed]
    return _seed_int(seed)


def _seed_int(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed: expected an int, a SeedSequence or a list of ints, "
                        f"got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed: expected ints >= 0, got {seed}")
    return int(seed)


def check_callback(callback):
    """train's callback: None, or a function callable as callback(iteration, theta, info)
    (a wrong arity is refused now, not as Python's TypeError after the first update)."""
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError(f"callback: expected a function (iteration, theta, info), "
                        f"got {type(callback).__name__}")
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):   # some builtins have none: called as they are
        return callback
    try:
        signature.bind(0, None, None)
    except TypeError:
        raise TypeError(f"callback: expected a function of (iteration, theta, info), "
                        f"got one of {signature}") from None
    return callback


def callback_verdict(verdict) -> bool:
    """Whether training goes on after its callback returned `verdict`: None goes on,
    otherwise its truth value (False stops); a value without one (an array) is refused."""
    if verdict is None:
        return True
    try:
        return bool(verdict)
    except Exception:   # NumPy's "truth value of an array ... is ambiguous", and the like
        raise TypeError(f"callback: expected it to return None, True (go on) or False "
                        f"(stop), got {type(verdict).__name__}") from None


def check_folder(x, name: str) -> Path:
    """A folder path given as str or os.PathLike."""
    if not isinstance(x, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a folder path (str or os.PathLike), "
                        f"got {type(x).__name__}")
    return Path(x)


# What the public functions return: a NumPy array, or with another library's arrays
# passed in, an array of that kind (pgfast/_arrays.py), which a static type cannot name.
ArrayResult = Any

# A folder argument (checkpoints, runs).
FolderLike = str | os.PathLike

# What an `rng` argument accepts, as numpy.random.default_rng does.
RngLike = np.random.Generator | np.random.BitGenerator | np.random.SeedSequence | int | None


def check_rng(rng: RngLike, name: str = "rng") -> np.random.Generator:
    """The Generator that `rng` stands for, as ``numpy.random.default_rng`` reads it:
    a Generator itself (used, not copied: its stream advances), an int seed (or a
    SeedSequence / BitGenerator) for a new Generator, None for a fresh seed from
    the operating system."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, bool) or not (rng is None or isinstance(
            rng, (numbers.Integral, np.random.SeedSequence, np.random.BitGenerator))):
        raise TypeError(f"{name}: expected a numpy.random.Generator, an int seed or None, "
                        f"got {type(rng).__name__}")
    try:
        return np.random.default_rng(int(rng) if isinstance(rng, numbers.Integral) else rng)
    except ValueError as exc:  # negative seeds
        raise ValueError(f"{name}: expected a non-negative int seed, got {rng}") from exc


def check_rngs(rng, name: str = "rng"):
    """`rng` for a rollout: a list or tuple of Generators (one per env slot, checked
    by the rollout against the slot count) as given, anything else as check_rng."""
    return rng if isinstance(rng, (list, tuple)) else check_rng(rng, name)


def check_finite_result(result, name: str, what: str):
    """`result` unchanged if finite; else a ValueError naming the input that caused
    it (finite inputs whose result overflows: magnitudes too extreme for float64)."""
    if not _all_finite(result if type(result) is np.ndarray else np.asarray(result)):
        raise ValueError(f"{name}: {what} is not finite (NaN or infinity) although the "
                         f"inputs are; values of {name} too extreme for float64 arithmetic")
    return result


def check_finite_from(result, what: str, **inputs):
    """`result` unchanged if finite; else a ValueError naming every input it was computed
    from, the one holding the largest magnitude first (the likeliest culprit: an extreme
    observation, action or weight, not only θ, can overflow the arithmetic)."""
    if _all_finite(np.asarray(result)):
        return result
    size = {name: _largest_magnitude(x) for name, x in inputs.items()}
    names = sorted(size, key=lambda name: -size[name])   # stable: ties keep the given order
    raise ValueError(f"{', '.join(names)}: {what} is not finite (NaN or infinity) although "
                     f"the inputs are; values too extreme for float64 arithmetic (largest "
                     f"magnitude {size[names[0]]:.3g}, in {names[0]})")


def _largest_magnitude(x) -> float:
    arr = np.asarray(x)
    if arr.size == 0 or arr.dtype.kind not in "biuf":
        return 0.0
    return float(np.max(np.abs(arr.astype(np.float64, copy=False))))


def check_theta(theta, n_params: int, name: str = "theta") -> np.ndarray:
    """θ (or a value function's φ) as a fresh, finite float64 (P,) array (a copy: the
    caller may keep it)."""
    arr = as_float_array(theta, name, ndim=1)
    if arr.shape != (n_params,):
        raise ValueError(f"{name}: expected shape ({n_params},), got {arr.shape}")
    return arr.copy() if arr is theta else arr


def check_is_policy(policy) -> None:
    """A pgfast policy (it acts), not a value function or another object."""
    if not isinstance(getattr(policy, "discrete", None), bool):   # what every policy declares
        raise TypeError(f"policy: expected a pgfast policy (LinearSoftmax, MLPSoftmax, "
                        f"LinearGaussian, MLPGaussian), got {type(policy).__name__}")


def check_policy_fits(policy, obs_dim: int, n_actions: int, act_dim: int) -> None:
    """The one check that `policy` acts in an env of these sizes (``n_actions`` > 0:
    that many discrete actions; 0: continuous actions of ``act_dim`` values)."""
    check_is_policy(policy)
    if obs_dim != policy.obs_dim:
        raise ValueError(
            f"policy: observations have {obs_dim} values, the policy expects {policy.obs_dim}")
    if n_actions > 0:
        if not policy.discrete or policy.n_actions != n_actions:
            raise ValueError(f"policy: the env has {n_actions} discrete actions; this policy "
                             "does not produce them")
    elif policy.discrete or policy.act_dim != act_dim:
        raise ValueError(f"policy: the env has continuous actions of dimension {act_dim}; "
                         "this policy does not produce them")


def renamed_arguments(given: dict, renames: dict, owner: str) -> dict:
    """The values of deprecated argument names in `given` (a ``**kwargs``), under
    their new names, each with a DeprecationWarning; an unknown name is a TypeError,
    as Python's own."""
    values = {}
    for old, value in given.items():
        if old not in renames:
            raise TypeError(f"{owner}() got an unexpected keyword argument {old!r}")
        warnings.warn(f"{owner}: {old}= is now {renames[old]}=; the old name goes in the "
                      f"next release", DeprecationWarning, stacklevel=3)
        values[renames[old]] = value
    return values
