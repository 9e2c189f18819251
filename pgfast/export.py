"""Export a trained policy out of pgfast: ONNX for any runtime, plain C for a simulator's loop.

Both compute the action pgfast acts by when it evaluates a policy
(``policy.mode``, ``pgfast eval``): for a softmax policy the index of the largest
logit (the first one on a tie), for a Gaussian policy the mean μ(s). The mean is
not clipped: pgfast hands it to the env as it is, and the env clips it to its
bounds (Gymnasium's Pendulum and MountainCarContinuous clip the force inside
``step``, and so do pgfast's native envs), so a simulator does the same.

The exports take raw observations: give the θ that acts on them (``policy.npz``
of ``pgfast train`` already holds it) or the training θ with its
:class:`pgfast.ObservationNormalizer`, whose statistics are folded into the first
layer (``normalizer.fold``). Everything is float64, as in pgfast's kernels: the C
export sums each layer's outputs in the order pgfast's kernels do, so it agrees
with ``policy.mode`` to the last few ulps (only libm's ``tanh`` differs from
pgfast's; bit for bit without hidden layers, against pgfast's default build, which
uses no fused multiply-adds); ONNX runtimes sum in their own order.

ONNX needs the optional extra: ``pip install "pgfast[onnx]"`` (onnx to write the
file, onnxruntime to check it). The C export needs nothing; :func:`c_actions`
compiles it with the system's C compiler.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ._validation import as_float_array, check_folder, check_theta
from .policies import LinearGaussian, LinearSoftmax, MLPGaussian, MLPSoftmax

__all__ = ["export_onnx", "export_c", "onnx_actions", "c_actions", "check_actions"]

ONNX_HINT = 'pip install "pgfast[onnx]"'
# Opset 13 and IR version 7 (ONNX 1.8): old enough for every current runtime, and
# every operator used here (MatMul, Add, Tanh, ArgMax) has its float64 kernel there.
_ONNX_OPSET = 13
_ONNX_IR_VERSION = 7
_POLICIES = (LinearSoftmax, LinearGaussian, MLPSoftmax, MLPGaussian)
_C_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _need(module, what):
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"{what} needs {module}: {ONNX_HINT}") from None


def _layers(policy, theta, obs_normalizer):
    """[(W, b), ...] of the network acting on raw observations, checked."""
    if not isinstance(policy, _POLICIES):
        raise TypeError(f"policy: expected a pgfast policy ({', '.join(c.__name__ for c in _POLICIES)}), "
                        f"got {type(policy).__name__}")
    theta = check_theta(theta, policy.n_params)
    if obs_normalizer is not None:
        if not hasattr(obs_normalizer, "fold"):
            raise TypeError(f"obs_normalizer: expected a pgfast.ObservationNormalizer, "
                            f"got {type(obs_normalizer).__name__}")
        theta = obs_normalizer.fold(policy, theta)
    params = policy.unpack(theta)
    n_layers = len(policy.hidden) + 1
    return [(params[f"W{l}"], params[f"b{l}"]) for l in range(n_layers)]


def _describe(policy):
    return f"{type(policy).__name__}({', '.join(f'{k}={v}' for k, v in policy.config().items() if k != 'class')})"


def export_onnx(policy, theta, path, obs_normalizer=None):
    """Write the policy's deterministic action as an ONNX model.

    The model has one input, ``obs`` (float64, shape (batch, obs_dim), raw
    observations), and one output, ``action``: int64 (batch,) action indices for
    a softmax policy (argmax of the logits), float64 (batch, act_dim) means for a
    Gaussian policy. The layers are ``h = tanh(h @ W_l + b_l)``, ``z = h @ W_L + b_L``
    (ONNX opset 13: MatMul, Add, Tanh, ArgMax). The policy's configuration is kept
    in the model's metadata (``pgfast_policy``, JSON).

    Parameters
    ----------
    policy : LinearSoftmax, LinearGaussian, MLPSoftmax or MLPGaussian
        The architecture.
    theta : array_like, shape (P,)
        The parameters: acting on raw observations, or on normalised ones when
        `obs_normalizer` is given.
    path : str or os.PathLike
        The ``.onnx`` file to write (its folder must exist).
    obs_normalizer : pgfast.ObservationNormalizer, optional
        The statistics θ was trained with, folded into the first layer.

    Returns
    -------
    pathlib.Path
        `path`.

    Raises
    ------
    ImportError
        onnx is not installed (``pip install "pgfast[onnx]"``).
    TypeError
        Not a pgfast policy, or a `path` that is not a path.
    ValueError
        A θ of the wrong length or with non-finite values.

    Examples
    --------
    >>> import numpy as np, pgfast, tempfile, os
    >>> from pgfast.export import export_onnx, onnx_actions
    >>> policy = pgfast.MLPSoftmax(4, 2, hidden=(8,))
    >>> theta = policy.init(np.random.default_rng(0))
    >>> path = export_onnx(policy, theta, os.path.join(tempfile.mkdtemp(), "policy.onnx"))
    >>> obs = np.random.default_rng(1).normal(size=(5, 4))
    >>> bool((onnx_actions(path, obs) == policy.mode(theta, obs)).all())
    True
    """
    layers = _layers(policy, theta, obs_normalizer)
    path = check_folder(path, "path")
    onnx = _need("onnx", "export_onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes, weights, h = [], [], "obs"
    for l, (W, b) in enumerate(layers):
        weights += [numpy_helper.from_array(W, f"W{l}"), numpy_helper.from_array(b, f"b{l}")]
        nodes += [helper.make_node("MatMul", [h, f"W{l}"], [f"xW{l}"]),
                  helper.make_node("Add", [f"xW{l}", f"b{l}"], [f"z{l}"])]
        h = f"z{l}"
        if l < len(layers) - 1:
            nodes.append(helper.make_node("Tanh", [h], [f"h{l + 1}"]))
            h = f"h{l + 1}"
    batch = "batch"
    if policy.discrete:
        nodes.append(helper.make_node("ArgMax", [h], ["action"], axis=1, keepdims=0,
                                      select_last_index=0))
        out = helper.make_tensor_value_info("action", TensorProto.INT64, [batch])
    else:
        nodes.append(helper.make_node("Identity", [h], ["action"]))
        out = helper.make_tensor_value_info("action", TensorProto.DOUBLE, [batch, policy.act_dim])
    obs = helper.make_tensor_value_info("obs", TensorProto.DOUBLE, [batch, policy.obs_dim])
    graph = helper.make_graph(nodes, "pgfast_policy", [obs], [out], initializer=weights)
    model = helper.make_model(graph, producer_name="pgfast",
                              opset_imports=[helper.make_opsetid("", _ONNX_OPSET)])
    model.ir_version = _ONNX_IR_VERSION
    model.doc_string = f"Deterministic action of {_describe(policy)} on raw observations"
    helper.set_model_props(model, {"pgfast_policy": json.dumps(policy.config())})
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.fspath(path))
    return path


def onnx_actions(path, observations):
    """The actions an exported ONNX model gives, computed by onnxruntime.

    Parameters
    ----------
    path : str or os.PathLike
        A model written by :func:`export_onnx`.
    observations : array_like, shape (N, obs_dim)
        Raw observations.

    Returns
    -------
    ndarray
        int64 (N,) or float64 (N, act_dim), as ``policy.mode`` returns them.

    Raises
    ------
    ImportError
        onnxruntime is not installed (``pip install "pgfast[onnx]"``).
    ValueError
        Observations that are not a finite 2-D array.

    Examples
    --------
    See :func:`export_onnx`.
    """
    obs = as_float_array(observations, "observations", ndim=2)
    ort = _need("onnxruntime", "onnx_actions")
    session = ort.InferenceSession(os.fspath(check_folder(path, "path")),
                                   providers=["CPUExecutionProvider"])
    return session.run(["action"], {"obs": obs})[0]


def _c_array(name, values):
    numbers = [repr(float(v)) for v in np.ravel(values)]   # shortest round-trip digits
    rows = [", ".join(numbers[i:i + 4]) for i in range(0, len(numbers), 4)]
    return (f"static const double {name}[{len(numbers)}] = {{\n    "
            + ",\n    ".join(rows) + "\n};\n")


def export_c(policy, theta, directory, name="pgfast_policy", obs_normalizer=None):
    """Write the policy's deterministic action as dependency-free C99: ``NAME.h`` and ``NAME.c``.

    The header declares, for a softmax policy, ``int NAME_act(const double *obs)``
    (the index of the largest logit, the first on a tie) and, for a Gaussian
    policy, ``void NAME_act(const double *obs, double *action)`` (the mean μ(s),
    ``NAME_ACT_DIM`` values), with ``NAME_OBS_DIM`` raw observation values in. The
    source holds θ as ``static const double`` arrays (shortest round-trip digits:
    the same doubles), needs only ``<math.h>`` (``tanh``, for an MLP), allocates
    nothing and is reentrant. Each layer sums ``b_k + Σ_j x_j W_jk`` in the order
    j = 0, 1, ... as pgfast's kernels do, so built without contraction into fused
    multiply-adds (``-ffp-contract=off``; x86-64 compilers do not contract without
    ``-mfma`` anyway) a linear policy gives pgfast's actions bit for bit, and an
    MLP's differ by the last few ulps of libm's ``tanh``.

    Parameters
    ----------
    policy : LinearSoftmax, LinearGaussian, MLPSoftmax or MLPGaussian
        The architecture.
    theta : array_like, shape (P,)
        The parameters: acting on raw observations, or on normalised ones when
        `obs_normalizer` is given.
    directory : str or os.PathLike
        The folder to write the two files into (created if missing).
    name : str, default "pgfast_policy"
        The files' stem and the prefix of every public C name: a C identifier.
    obs_normalizer : pgfast.ObservationNormalizer, optional
        The statistics θ was trained with, folded into the first layer.

    Returns
    -------
    header, source : pathlib.Path
        ``directory/NAME.h`` and ``directory/NAME.c``.

    Raises
    ------
    TypeError
        Not a pgfast policy, or a `name` that is not a string.
    ValueError
        A θ of the wrong length or with non-finite values, or a `name` that is
        not a C identifier.

    Examples
    --------
    >>> import numpy as np, pgfast, tempfile
    >>> from pgfast.export import export_c
    >>> policy = pgfast.LinearGaussian(3, 1)
    >>> header, source = export_c(policy, policy.init(np.random.default_rng(0)),
    ...                           tempfile.mkdtemp(), name="pendulum")
    >>> print(header.read_text().split("\\n\\n")[-2])   # the function it declares
    /* action <- the mean mu(obs) for one raw observation (not clipped to the
       action bounds: the env clips, as Gymnasium's envs do). */
    void pendulum_act(const double *obs, double *action);
    """
    layers = _layers(policy, theta, obs_normalizer)
    directory = check_folder(directory, "directory")
    if not isinstance(name, str):
        raise TypeError(f"name: expected a string, got {type(name).__name__}")
    if not _C_NAME.match(name):
        raise ValueError(f"name: expected a C identifier (letters, digits, _), got {name!r}")
    upper = name.upper()
    from . import __version__

    what = _describe(policy)
    header = [f"/* {name}.h: the deterministic action of a pgfast {what},",
              f"   written by pgfast {__version__} (pgfast.export.export_c). C99, no allocation,",
              "   reentrant. Observations are raw (any normalisation is folded in). */",
              f"#ifndef {upper}_H", f"#define {upper}_H", "",
              "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
              f"#define {upper}_OBS_DIM {policy.obs_dim}"]
    if policy.discrete:
        header += [f"#define {upper}_N_ACTIONS {policy.n_actions}", "",
                   f"/* The action index in [0, {upper}_N_ACTIONS) for one raw observation:",
                   "   the largest logit, the first one on a tie. */",
                   f"int {name}_act(const double *obs);"]
    else:
        header += [f"#define {upper}_ACT_DIM {policy.act_dim}", "",
                   "/* action <- the mean mu(obs) for one raw observation (not clipped to the",
                   "   action bounds: the env clips, as Gymnasium's envs do). */",
                   f"void {name}_act(const double *obs, double *action);"]
    header += ["", "#ifdef __cplusplus", "}", "#endif", f"#endif /* {upper}_H */", ""]

    widths = [W.shape[1] for W, _ in layers]
    source = [f"/* {name}.c: see {name}.h. Written by pgfast {__version__}. */",
              f'#include "{name}.h"', ""]
    if len(layers) > 1:
        source += ["#include <math.h>", ""]
    for l, (W, b) in enumerate(layers):
        source += [f"/* layer {l}: W{l} ({W.shape[0]} x {W.shape[1]}, row-major), b{l} */",
                   _c_array(f"W{l}", W), _c_array(f"b{l}", b)]
    source += [
        "/* out <- in W + b, each out[k] summed as b[k] + in[0] W[0][k] + in[1] W[1][k] + ...",
        "   in this order, the order of pgfast's kernels. */",
        "static void affine(const double *in, int n_in, const double *W, const double *b,",
        "                   int n_out, double *out)",
        "{",
        "    for (int k = 0; k < n_out; ++k) {",
        "        double acc = b[k];",
        "        for (int j = 0; j < n_in; ++j)",
        "            acc += in[j] * W[j * n_out + k];",
        "        out[k] = acc;",
        "    }",
        "}", ""]
    if policy.discrete:
        source += [f"int {name}_act(const double *obs)", "{"]
    else:
        source += [f"void {name}_act(const double *obs, double *action)", "{"]
    for l, width in enumerate(widths[:-1]):
        source.append(f"    double h{l + 1}[{width}];")
    if policy.discrete:
        source.append(f"    double z[{widths[-1]}];")
    out_name = "z" if policy.discrete else "action"
    h, n_in = "obs", policy.obs_dim
    for l, width in enumerate(widths):
        target = out_name if l == len(widths) - 1 else f"h{l + 1}"
        source.append(f"    affine({h}, {n_in}, W{l}, b{l}, {width}, {target});")
        if target != out_name:
            source += [f"    for (int i = 0; i < {width}; ++i)",
                       f"        {target}[i] = tanh({target}[i]);"]
        h, n_in = target, width
    if policy.discrete:
        source += ["    int best = 0;",
                   f"    for (int k = 1; k < {widths[-1]}; ++k)",
                   "        if (z[k] > z[best])",
                   "            best = k;",
                   "    return best;"]
    source += ["}", ""]

    directory.mkdir(parents=True, exist_ok=True)
    header_path, source_path = directory / f"{name}.h", directory / f"{name}.c"
    header_path.write_text("\n".join(header))
    source_path.write_text("\n".join(source))
    return header_path, source_path


def c_actions(source, policy, observations, compiler=None, flags=("-O2", "-ffp-contract=off")):
    """The actions a C export gives: compile it with a small driver, run it on `observations`.

    Parameters
    ----------
    source : str or os.PathLike
        ``NAME.c`` written by :func:`export_c` (its header beside it).
    policy : pgfast policy
        The exported architecture (says which signature ``NAME_act`` has).
    observations : array_like, shape (N, obs_dim)
        Raw observations.
    compiler : str, optional
        The C compiler; default ``$CC``, else ``cc``.
    flags : sequence of str
        Compiler flags (the math library is linked after them).

    Returns
    -------
    ndarray
        int64 (N,) or float64 (N, act_dim), as ``policy.mode`` returns them.

    Raises
    ------
    ValueError
        No C compiler, or the export fails to compile or run.

    Examples
    --------
    >>> import numpy as np, pgfast, tempfile
    >>> from pgfast.export import c_actions, export_c
    >>> policy = pgfast.MLPGaussian(3, 2, hidden=(16,))
    >>> theta = policy.init(np.random.default_rng(0))
    >>> _, source = export_c(policy, theta, tempfile.mkdtemp())
    >>> obs = np.random.default_rng(1).normal(size=(4, 3))
    >>> bool(np.allclose(c_actions(source, policy, obs), policy.mode(theta, obs), rtol=1e-14))
    True
    """
    source = check_folder(source, "source")
    obs = as_float_array(observations, "observations", ndim=2)
    if obs.shape[1] != policy.obs_dim:
        raise ValueError(f"observations: expected width {policy.obs_dim} (obs_dim), "
                         f"got shape {obs.shape}")
    compiler = compiler or os.environ.get("CC") or "cc"
    if shutil.which(compiler) is None:
        raise ValueError(f"compiler: no C compiler {compiler!r} found (set CC)")
    name = source.stem
    width = 1 if policy.discrete else policy.act_dim
    call = ("out[0] = (double) NAME_act(obs);" if policy.discrete
            else "NAME_act(obs, out);").replace("NAME", name)
    # Reads N raw observations as doubles from stdin, writes N actions as doubles.
    driver = "\n".join([
        "#include <stdio.h>", f'#include "{name}.h"', "int main(void)", "{",
        f"    double obs[{policy.obs_dim}], out[{width}];",
        f"    while (fread(obs, sizeof(double), {policy.obs_dim}, stdin) == {policy.obs_dim}) {{",
        f"        {call}",
        f"        fwrite(out, sizeof(double), {width}, stdout);",
        "    }", "    return 0;", "}", ""])
    with tempfile.TemporaryDirectory() as tmp:
        main, exe = Path(tmp) / "main.c", Path(tmp) / "policy"
        main.write_text(driver)
        build = subprocess.run([compiler, "-std=c99", *flags, f"-I{source.parent}", str(main),
                                str(source), "-o", str(exe), "-lm"],
                               capture_output=True, text=True)
        if build.returncode:
            raise ValueError(f"source: {source} does not compile with {compiler}:\n"
                             f"{build.stderr}")
        run = subprocess.run([str(exe)], input=obs.tobytes(), capture_output=True)
        if run.returncode:
            raise ValueError(f"source: the compiled export failed ({run.returncode})")
    out = np.frombuffer(run.stdout, dtype=np.float64).reshape(obs.shape[0], width)
    return out[:, 0].astype(np.int64) if policy.discrete else out.copy()


def check_actions(policy, theta, observations, actions, ulps=32):
    """Check exported actions against pgfast's ``policy.mode``; the worst deviation.

    Means may differ by `ulps` units in the last place of ``|b_k| + Σ_j |h_j W_jk|``,
    the magnitude of the terms the output layer sums: the scale of the classic
    error bound of a sum, ``(n − 1) u Σ_j |t_j|`` in any order of summation, which
    is 32 ulps for the 64 terms of a common layer. Measured: the C export stays
    within 2.1 (only ``tanh`` differs), onnxruntime within 10 (its own order). Action
    indices must be equal wherever pgfast's two largest logits are further apart than
    that.

    Parameters
    ----------
    policy : pgfast policy
        The exported architecture.
    theta : array_like, shape (P,)
        The parameters acting on raw observations.
    observations : array_like, shape (N, obs_dim)
        Raw observations.
    actions : array_like
        The export's actions for them.
    ulps : float, default 32
        The tolerance.

    Returns
    -------
    float
        The largest deviation in those units (0 when bit for bit; for indices,
        the share of observations whose index differs, near ties included).

    Raises
    ------
    ValueError
        An action outside the tolerance.

    Examples
    --------
    >>> import numpy as np, pgfast
    >>> from pgfast.export import check_actions
    >>> policy = pgfast.LinearSoftmax(2, 3)
    >>> theta = policy.init(np.random.default_rng(0))
    >>> obs = np.random.default_rng(1).normal(size=(6, 2))
    >>> check_actions(policy, theta, obs, policy.mode(theta, obs))
    0.0
    """
    obs = as_float_array(observations, "observations", ndim=2)
    theta = check_theta(theta, policy.n_params)
    expected = policy.mode(theta, obs)
    actions = np.asarray(actions)
    if actions.shape != expected.shape:
        raise ValueError(f"actions: expected shape {expected.shape}, got {actions.shape}")
    # The magnitude of the output layer's terms: the scale of its rounding errors.
    params = policy.unpack(theta)
    last = len(policy.hidden)
    inputs = obs
    for l in range(last):
        inputs = np.tanh(inputs @ params[f"W{l}"] + params[f"b{l}"])
    W, b = params[f"W{last}"], params[f"b{last}"]
    scale = np.abs(b) + np.abs(inputs) @ np.abs(W)
    unit = np.spacing(scale)
    if policy.discrete:
        z = inputs @ W + b
        top2 = np.sort(z, axis=1)[:, -2:] if z.shape[1] > 1 else np.c_[z - np.inf, z]
        tied = (top2[:, 1] - top2[:, 0]) <= 2 * ulps * unit.max(axis=1)
        wrong = (actions != expected) & ~tied
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            raise ValueError(f"actions: observation {i} gives action {actions[i]}, pgfast "
                             f"{expected[i]}; {int(wrong.sum())} of {len(wrong)} differ")
        return float(np.mean(actions != expected))
    deviation = np.abs(actions - expected) / unit
    worst = float(deviation.max()) if deviation.size else 0.0
    if worst > ulps:
        i = int(np.argmax(deviation.max(axis=1)))
        raise ValueError(f"actions: observation {i} gives {actions[i]}, pgfast {expected[i]}: "
                         f"{worst:.1f} ulps apart (tolerance {ulps})")
    return worst
