"""Arrays in, arrays out: the one boundary between other array libraries and pgfast.

Public functions that take arrays are wrapped with :func:`arrays_in_out`. NumPy
arrays, lists and scalars pass straight through. A CPU array of another library
(PyTorch, JAX, array-api-strict, anything with ``__dlpack__``) is
viewed as a NumPy array without a copy, the function runs on NumPy, and its array
results come back in the caller's library, float results in the caller's float
dtype (float32 if every float input is float32, else float64): at most one copy
on the way out (the dtype cast, when the kernel computed in float64).

Results carry no autograd graph: a ``requires_grad`` tensor is read through
``detach()``. Arrays on another device raise a TypeError naming the argument;
pgfast never copies between devices. One call mixes no libraries.

Which library an array belongs to is asked of array-api-compat once per array
type (it names types by module, so no framework is imported here); torch tensors
then take a faster path than generic DLPack (``Tensor.numpy`` / ``from_numpy``).
"""
from __future__ import annotations

import functools
import inspect
import sys

import numpy as np

_CPU = 1  # DLPack's kDLCPU


class _Library:
    """How to view one library's arrays as NumPy and to hand NumPy results back."""

    def __init__(self, name, to_numpy, from_numpy):
        self.name = name
        self.to_numpy = to_numpy      # (array, argument name) -> np.ndarray view
        self.from_numpy = from_numpy  # np.ndarray -> the library's array


def _torch_to_numpy(x, name):
    try:
        return x.numpy()   # the common case: a CPU tensor without a graph
    except (TypeError, RuntimeError):
        pass
    if not x.is_cpu:
        raise TypeError(f"{name}: expected a CPU tensor, got one on {x.device} "
                        f"(pgfast computes on the CPU; move it with .cpu())")
    if x.requires_grad:
        x = x.detach()
    try:
        return x.numpy()
    except (TypeError, RuntimeError) as exc:  # sparse, bfloat16, conjugate views
        raise TypeError(f"{name}: cannot view a torch {x.dtype} tensor as an array: "
                        f"{exc}") from exc


def _device_name(x):
    import array_api_compat

    try:
        return str(array_api_compat.device(x))
    except Exception:   # a DLPack-only object: its (type, id) pair is all there is
        return f"DLPack device {tuple(int(d) for d in x.__dlpack_device__())}"


def _dlpack_to_numpy(x, name):
    try:
        on_cpu = int(x.__dlpack_device__()[0]) == _CPU
    except Exception as exc:
        raise TypeError(f"{name}: cannot read the device of a {type(x).__name__}") from exc
    if not on_cpu:
        raise TypeError(f"{name}: expected an array on the CPU, got one on "
                        f"{_device_name(x)} (pgfast computes on the CPU)")
    try:
        return np.from_dlpack(x)
    except (BufferError, TypeError, RuntimeError, ValueError) as exc:
        raise TypeError(f"{name}: cannot view a {type(x).__name__} as an array: {exc}") from exc


def _library_of(x):
    """The _Library of x's type, or None for NumPy and for what is not an array."""
    if isinstance(x, np.ndarray) or not hasattr(type(x), "__dlpack__"):
        return None
    import array_api_compat

    if array_api_compat.is_torch_array(x):
        return _Library("torch", _torch_to_numpy, sys.modules["torch"].from_numpy)
    try:
        xp = array_api_compat.array_namespace(x)
    except TypeError:   # DLPack without an array API: read it, answer in NumPy
        return _Library(type(x).__name__, _dlpack_to_numpy, lambda a: a)
    return _Library(xp.__name__, _dlpack_to_numpy, xp.from_dlpack)


_LIBRARIES: dict = {}   # type -> _Library or None, filled on first sight


def _library(x):
    t = type(x)
    try:
        return _LIBRARIES[t]
    except KeyError:
        lib = _LIBRARIES[t] = _library_of(x)
        return lib


def as_numpy(x, name):
    """x as NumPy when it is another library's CPU array (a view), else x itself."""
    if type(x) is np.ndarray:
        return x
    lib = _library(x)
    return x if lib is None else lib.to_numpy(x, name)


def arrays_in_out(*floats, other=(), out=None):
    """Decorate a function of NumPy arrays to take and return any library's CPU arrays.

    Parameters
    ----------
    *floats : str
        Arguments that hold real floating-point arrays; their dtypes set the
        result's float dtype. Integer, bool or complex arrays of another library
        are refused here (NumPy ones keep NumPy's documented conversions).
    other : tuple of str
        Array arguments of any dtype (flags, action indices).
    out : str, optional
        The output argument: another library's array is written in place and
        returned as it was given.
    """
    roles = [(name, _FLOAT) for name in floats] + [(name, _OTHER) for name in other]
    if out:
        roles.append((out, _OUT))

    def decorate(func):
        params = list(inspect.signature(func).parameters)
        where = tuple((name, params.index(name), role) for name, role in roles)
        where_float = tuple((name, i, role == _FLOAT) for name, i, role in where)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            # The NumPy fast path: nothing to convert, one type check per argument.
            n = len(args)
            float32 = None   # every float ndarray float32? (None: no float ndarray)
            for name, i, is_float in where_float:
                x = args[i] if i < n else kwargs.get(name)
                if type(x) is np.ndarray:
                    if is_float and float32 is not False:
                        float32 = x.dtype == _FLOAT32
                elif x is not None and _library(x) is not None:
                    return _call_converted(func, where, args, kwargs)
            result = func(*args, **kwargs)
            # float32 in, float32 out (the kernels compute in float64 either way)
            return _numpy_float32(result) if float32 else result

        return wrapper

    return decorate


_FLOAT, _OTHER, _OUT = range(3)
_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)
_UNSEEN = object()


def _call_converted(func, where, args, kwargs):
    args = list(args)
    n = len(args)
    lib = first = numpy_arg = given_out = None
    any_float, all_float32 = False, True
    for name, i, role in where:
        x = args[i] if i < n else kwargs.get(name)
        if x is None:
            continue
        this = _LIBRARIES.get(type(x), _UNSEEN)
        if this is _UNSEEN:
            this = _library(x)
        if this is None:
            if isinstance(x, np.ndarray):
                numpy_arg = numpy_arg or name
            continue   # lists, scalars: NumPy converts them as usual
        if this is not lib:
            if lib is not None:
                raise TypeError(f"{name}: expected a {lib.name} array like {first}, got a "
                                f"{this.name} array (one call takes one array library)")
            lib, first = this, name
        arr = lib.to_numpy(x, name)
        if role == _FLOAT:
            dtype = arr.dtype
            if dtype.kind != "f":
                raise TypeError(f"{name}: expected a real floating-point {lib.name} array, "
                                f"got dtype {dtype}")
            any_float = True
            all_float32 = all_float32 and dtype == _FLOAT32
        elif role == _OUT:
            given_out = (arr, x)
        if i < n:
            args[i] = arr
        else:
            kwargs[name] = arr
    if numpy_arg is not None:
        raise TypeError(f"{numpy_arg}: expected a {lib.name} array like {first}, got a numpy "
                        f"array (one call takes one array library)")
    result = func(*args, **kwargs)
    dtype = _FLOAT32 if any_float and all_float32 else _FLOAT64
    return _convert_back(result, lib, dtype, given_out)


def _numpy_float32(result):
    if type(result) is tuple:
        return tuple(_numpy_float32(r) for r in result)
    if isinstance(result, np.ndarray) and result.dtype == _FLOAT64:
        return result.astype(_FLOAT32)
    return result


def _convert_back(result, lib, dtype, given_out):
    if type(result) is tuple:
        return tuple(_convert_back(r, lib, dtype, given_out) for r in result)
    if not isinstance(result, np.ndarray):
        return result
    if given_out is not None and result is given_out[0]:
        return given_out[1]
    if result.dtype.kind == "f" and result.dtype != dtype:
        result = result.astype(dtype)
    return lib.from_numpy(result)
