# cython: language_level=3
"""Gymnasium's MuJoCo v5 environments as native kernels (pgfast._mujoco_envs).

Each kernel is a ``VecEnvKernel`` (the same interface a user's simulator
implements, see ``src/_envs.pxd``), so it steps inside the fused rollout loop
without the GIL. One ``mjModel`` is loaded from Gymnasium's XML file and
shared; every env slot owns one ``mjData``, which is what MuJoCo allows to run
on several threads at once.

HalfCheetah loads pgfast's copy of Gymnasium's model (pgfast/assets/), the same
mjModel without the settotalmass attribute MuJoCo 4 deprecates.

A step reproduces ``gymnasium/envs/mujoco/<env>_v5.py`` with its default
options: ``ctrl = action`` (MuJoCo clamps to the actuator's ctrlrange, the cost
terms use the unclamped action), ``frame_skip`` calls of ``mj_step``, then the
observation, reward and termination written with Gymnasium's operation order
(numpy's pairwise ``np.sum``, the fused multiply-adds of ``np.linalg.norm``'s
BLAS dot). The reset draws its noise from the slot's numpy Generator in the
order Gymnasium's ``reset_model`` does, so ``reset(seed=s)`` matches.

One documented difference: when the simulation becomes unstable (MuJoCo's
NaN/Inf/huge qpos, qvel or qacc warnings), MuJoCo resets that ``mjData`` to the
model's default pose in the middle of the step. Gymnasium carries on from that
pose; here the step reports the episode terminated instead, so an exploded
episode never continues as if nothing happened.
"""
from libc.math cimport INFINITY, cos, fabs, fma, isfinite, pow, sin, sqrt
from libc.stdlib cimport calloc, free, malloc
from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport random_standard_normal, random_uniform

import os

import gymnasium
import numpy as np

from pgfast._envs cimport VecEnvKernel
from _mujoco_api cimport *

# The reward arithmetic is numpy's: one rounding per operation. CMakeLists.txt
# builds this module with -ffp-contract=off; fused multiply-adds are written
# out (fma) only where numpy's BLAS does them.

HEADER_VERSION = mjVERSION_HEADER      # the MuJoCo headers this module was compiled with


def library_version():
    """mj_version() of the MuJoCo library loaded at run time (4.0.1 is 4000001)."""
    return mj_version()


def struct_fields(size_t model_address, size_t data_address):
    """Every mjModel and mjData member the kernels read, taken from the structs at
    these addresses where this module's compiled layout puts them: plain values as
    they are, arrays as their addresses. pgfast/mujoco.py hands in structs that the
    mujoco package made and compares with that package's own view of them."""
    cdef const mjModel* m = <const mjModel*> model_address
    cdef const mjData* d = <const mjData*> data_address
    model = {
        "narena": m.narena, "nbuffer": m.nbuffer, "nq": m.nq, "nv": m.nv, "nu": m.nu,
        "na": m.na, "nbody": m.nbody, "nsite": m.nsite, "opt.timestep": m.opt.timestep,
        "qpos0": <size_t> m.qpos0, "body_mass": <size_t> m.body_mass,
        "actuator_ctrlrange": <size_t> m.actuator_ctrlrange}
    data = {
        "warning.number": [d.warning[<int> k].number
                           for k in (mjWARN_BADQPOS, mjWARN_BADQVEL, mjWARN_BADQACC)],
        "time": d.time, "qpos": <size_t> d.qpos, "qvel": <size_t> d.qvel,
        "ctrl": <size_t> d.ctrl, "qacc": <size_t> d.qacc, "xpos": <size_t> d.xpos,
        "xipos": <size_t> d.xipos, "site_xpos": <size_t> d.site_xpos,
        "cinert": <size_t> d.cinert, "cvel": <size_t> d.cvel,
        "qfrc_actuator": <size_t> d.qfrc_actuator,
        "qfrc_constraint": <size_t> d.qfrc_constraint, "cfrc_ext": <size_t> d.cfrc_ext}
    return model, data


cdef inline double _clip(double x, double lo, double hi) noexcept nogil:
    # np.clip: NaN passes through.
    return lo if x < lo else (hi if x > hi else x)


cdef double _np_sum(const double* a, Py_ssize_t n) noexcept nogil:
    """np.sum of a contiguous float64 array: numpy's pairwise summation."""
    cdef double r[8]
    cdef double res
    cdef Py_ssize_t i, j, half
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return res
    if n <= 128:
        for j in range(8):
            r[j] = a[j]
        i = 8
        while i < n - n % 8:
            for j in range(8):
                r[j] += a[i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[i]
            i += 1
        return res
    half = n // 2
    half -= half % 8
    return _np_sum(a, half) + _np_sum(a + half, n - half)


cdef double _sum_squares(const double* a, Py_ssize_t n, double* scratch) noexcept nogil:
    """np.sum(np.square(a)); scratch holds n doubles."""
    cdef Py_ssize_t k
    for k in range(n):
        scratch[k] = a[k] * a[k]
    return _np_sum(scratch, n)


cdef inline double _norm3(const double* v) noexcept nogil:
    # np.linalg.norm of a 3-vector: sqrt of BLAS ddot, which fuses each
    # product after the first into the running sum.
    return sqrt(fma(v[2], v[2], fma(v[1], v[1], v[0] * v[0])))


cdef inline double _norm2(double x, double y) noexcept nogil:
    return sqrt(fma(y, y, x * x))


cdef class MujocoKernel(VecEnvKernel):
    """Shared base of the MuJoCo kernels: the model, one mjData per slot, the
    reset noise and the frame-skipped step. Subclasses write the env's
    observation, reward and termination (and any other reset distribution).

    Parameters
    ----------
    num_envs : int
        Number of env slots B (one mjData each).
    xml_file : str or path
        The MuJoCo model; a subclass defaults to Gymnasium's and checks its sizes.
    frame_skip : int
        mj_step calls per env step.
    reset_noise_scale : float
        Half-width s of the uniform reset noise (standard deviation where Gymnasium
        draws normals).
    max_episode_steps, seed
        As ``VecEnvKernel``.
    """
    cdef mjModel* model
    cdef mjData** data
    cdef double* scratch           # (num_envs, scratch_size) per-slot workspace
    cdef Py_ssize_t scratch_size
    cdef readonly int frame_skip
    cdef readonly double dt        # model timestep * frame_skip, as Gymnasium's env.dt
    cdef readonly double reset_noise_scale
    cdef readonly str xml_file
    cdef int nq, nv, nu
    cdef bint post_constraint      # compute cfrc_ext after the step (Ant's contact forces)

    # (nq, nv, nu) of Gymnasium's model: the observation layout depends on them.
    expected_sizes = None

    def __init__(self, Py_ssize_t num_envs, xml_file, int frame_skip, double reset_noise_scale,
                 Py_ssize_t max_episode_steps=0, seed=None):
        cdef char error[1000]
        cdef Py_ssize_t i
        cdef void* probe
        if frame_skip < 1:
            raise ValueError(f"frame_skip: expected an int >= 1, got {frame_skip}")
        if not (isfinite(reset_noise_scale) and reset_noise_scale >= 0):
            raise ValueError(f"reset_noise_scale: expected a finite value >= 0, "
                             f"got {reset_noise_scale}")
        if self.model != NULL:
            raise RuntimeError(f"{type(self).__name__}: already initialised")
        path = str(xml_file)
        error[0] = 0
        self.model = mj_loadXML(path.encode(), NULL, error, sizeof(error))
        if self.model == NULL:
            raise ValueError(f"xml_file: MuJoCo could not load {path!r}: {error.decode()}")
        self.xml_file = path
        self.nq, self.nv, self.nu = self.model.nq, self.model.nv, self.model.nu
        if self.expected_sizes is not None and \
                (self.nq, self.nv, self.nu) != tuple(self.expected_sizes):
            raise ValueError(
                f"xml_file: {type(self).__name__} needs a model with (nq, nv, nu) = "
                f"{tuple(self.expected_sizes)}, {path!r} has {(self.nq, self.nv, self.nu)}")
        self.frame_skip = frame_skip
        self.dt = self.model.opt.timestep * frame_skip
        self.reset_noise_scale = reset_noise_scale
        self.setup()
        VecEnvKernel.__init__(self, num_envs, self.observation_size(), self.nu, 0,
                              max_episode_steps, seed)
        self.data = <mjData**> calloc(num_envs, sizeof(mjData*))
        self.scratch = <double*> calloc(num_envs * self.scratch_size + 1, sizeof(double))
        if self.data == NULL or self.scratch == NULL:
            raise MemoryError()
        for i in range(num_envs):
            # MuJoCo ends the process when its own allocation fails: try the
            # size first (its arena is reserved, mostly never touched).
            probe = malloc(self.model.narena + self.model.nbuffer + 1024)
            if probe == NULL:
                raise MemoryError(f"num_envs: no memory for MuJoCo's data of slot {i} "
                                  f"of {num_envs}")
            free(probe)
            self.data[i] = mj_makeData(self.model)
            if self.data[i] == NULL:
                raise MemoryError(f"{type(self).__name__}: MuJoCo could not allocate mjData")

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.data != NULL:
            for i in range(self.num_envs):
                if self.data[i] != NULL:
                    mj_deleteData(self.data[i])
            free(self.data)
        free(self.scratch)
        if self.model != NULL:
            mj_deleteModel(self.model)

    # ---- what a subclass defines ----------------------------------------

    def setup(self):
        """Model-dependent constants (body ids, scratch size); called once the
        model is loaded."""

    def observation_size(self):
        raise NotImplementedError

    cdef void draw_state(self, mjData* d, bitgen_t* bitgen) noexcept nogil:
        """After mj_resetData (qpos = qpos0, qvel = 0): Gymnasium's reset noise,
        qpos += U(-s, s) for each coordinate, then qvel += U(-s, s)."""
        cdef Py_ssize_t k
        cdef double s = self.reset_noise_scale
        for k in range(self.nq):
            d.qpos[k] = d.qpos[k] + random_uniform(bitgen, -s, s - (-s))
        for k in range(self.nv):
            d.qvel[k] = d.qvel[k] + random_uniform(bitgen, -s, s - (-s))

    cdef double x_position(self, const mjData* d) noexcept nogil:
        """The x the forward velocity is measured on: qpos[0]."""
        return d.qpos[0]

    cdef void observe(self, const mjData* d, double* obs) noexcept nogil:
        pass

    cdef int reward_and_termination(self, const mjData* d, const double* action,
                                    double x_before, double* scratch,
                                    double* reward) noexcept nogil:
        """Write the reward of the step just taken from x_before; return terminated."""
        return 0

    # ---- the VecEnvKernel interface --------------------------------------

    cdef void reset_one(self, Py_ssize_t i, bitgen_t* bitgen, double* obs) noexcept nogil:
        cdef mjData* d = self.data[i]
        mj_resetData(self.model, d)
        self.draw_state(d, bitgen)
        mj_forward(self.model, d)        # Gymnasium's set_state
        self.observe(d, obs)

    cdef int step_one(self, Py_ssize_t i, const double* action, bitgen_t* bitgen,
                      double* obs, double* reward) noexcept nogil:
        cdef mjData* d = self.data[i]
        cdef double x_before
        cdef int k, unstable, terminated
        for k in range(self.nu):
            if not isfinite(action[k]):
                return -1
        x_before = self.x_position(d)
        for k in range(self.nu):
            d.ctrl[k] = action[k]
        unstable = _unstable_count(d)
        for k in range(self.frame_skip):
            mj_step(self.model, d)
        if self.post_constraint:
            mj_rnePostConstraint(self.model, d)
        self.observe(d, obs)
        terminated = self.reward_and_termination(
            d, action, x_before, self.scratch + i * self.scratch_size, reward)
        if _unstable_count(d) != unstable:
            return 1
        return terminated

    # ---- Python access for tests and checkpoints --------------------------

    def get_state(self, Py_ssize_t i):
        """Slot i's full integration state (mj_getState with mjSTATE_INTEGRATION)."""
        self._check_slot(i)
        state = np.empty(mj_stateSize(self.model, mjSTATE_INTEGRATION))
        cdef double[::1] view = state
        mj_getState(self.model, self.data[i], &view[0], mjSTATE_INTEGRATION)
        return state

    def set_state(self, Py_ssize_t i, state):
        """Set slot i's integration state (as returned by get_state, or by
        ``mujoco.mj_getState(model, data, out, mujoco.mjtState.mjSTATE_INTEGRATION)``),
        then recompute its derived quantities (mj_forward), as Gymnasium's
        ``set_state`` does."""
        self._check_slot(i)
        cdef double[::1] view = np.ascontiguousarray(state, dtype=np.float64).ravel()
        n = mj_stateSize(self.model, mjSTATE_INTEGRATION)
        if view.shape[0] != n:
            raise ValueError(f"state: expected {n} values, got {view.shape[0]}")
        if not np.isfinite(view).all():
            raise ValueError("state: expected finite values")
        mj_setState(self.model, self.data[i], &view[0], mjSTATE_INTEGRATION)
        mj_forward(self.model, self.data[i])

    def copy_data_into(self, Py_ssize_t i, target):
        """Copy slot i's whole mjData into `target`, a ``mujoco.MjData`` of the same
        model (Gymnasium's env of the same id): positions and frames as the last
        mj_step left them, which is what MuJoCo's renderer draws."""
        import mujoco

        self._check_slot(i)
        if not isinstance(target, mujoco.MjData):
            raise TypeError(f"target: expected a mujoco.MjData, got {type(target).__name__}")
        m = target.model
        cdef mjModel* own = self.model
        if (m.nq, m.nv, m.nu, m.na, m.nbody, m.ngeom, m.nsite, m.ncam, m.nlight, m.nbuffer,
                m.narena) != (own.nq, own.nv, own.nu, own.na, own.nbody, own.ngeom, own.nsite,
                              own.ncam, own.nlight, own.nbuffer, own.narena):
            raise ValueError("target: the mjData of another model (its sizes differ)")
        # The sizes match, so the copy stays within target's buffers.
        mj_copyData(<mjData*> <size_t> target._address, self.model, self.data[i])

    def observe_slot(self, Py_ssize_t i):
        """Slot i's current observation (float64)."""
        self._check_slot(i)
        obs = np.empty(self.obs_dim)
        cdef double[::1] view = obs
        self.observe(self.data[i], &view[0])
        return obs

    def unstable_count(self, Py_ssize_t i):
        """How often MuJoCo found slot i's simulation unstable (bad qpos, qvel
        or qacc) since its last reset."""
        self._check_slot(i)
        return _unstable_count(self.data[i])

    @property
    def timestep(self):
        return self.model.opt.timestep

    @property
    def ctrl_range(self):
        """(nu, 2) actuator control ranges (Gymnasium's action-space bounds)."""
        return np.array([[self.model.actuator_ctrlrange[2 * k],
                          self.model.actuator_ctrlrange[2 * k + 1]] for k in range(self.nu)])

    def _check_slot(self, Py_ssize_t i):
        if self.data == NULL:
            raise RuntimeError(f"{type(self).__name__}: not initialised")
        if not 0 <= i < self.num_envs:
            raise IndexError(f"i: expected a slot in [0, {self.num_envs}), got {i}")

    def _body_id(self, name):
        k = mj_name2id(self.model, mjOBJ_BODY, name.encode())
        if k < 0:
            raise ValueError(f"xml_file: the model has no body named {name!r}")
        return k


cdef inline int _unstable_count(const mjData* d) noexcept nogil:
    return (d.warning[<int> mjWARN_BADQPOS].number + d.warning[<int> mjWARN_BADQVEL].number
            + d.warning[<int> mjWARN_BADQACC].number)


def asset(name):
    """The path of Gymnasium's model file `name` (the XML its v5 env loads)."""
    return os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets", name)


def own_asset(name):
    """The path of pgfast's copy of a Gymnasium model that MuJoCo 4 warns about
    (pgfast/assets/: the same mjModel, written without deprecated attributes). Found
    through the package, not this module's file: an editable install keeps the
    compiled modules and the package's data in different folders."""
    import importlib.resources

    return str(importlib.resources.files("pgfast") / "assets" / name)


# ---- locomotion: forward reward (qpos[0] or the torso's x) ----------------


cdef class _PlanarWalkerKernel(MujocoKernel):
    """Hopper and Walker2d share their observation, qpos[1:] and clip(qvel, ±10), their
    v5 options (frame skip 4, reset noise 5e-3) and the option to keep running when
    unhealthy; each names its model in ``default_xml``."""
    cdef readonly bint terminate_when_unhealthy
    default_xml = None

    def __init__(self, Py_ssize_t num_envs=1, seed=None, Py_ssize_t max_episode_steps=1000, *,
                 bint terminate_when_unhealthy=True, double reset_noise_scale=5e-3,
                 xml_file=None):
        self.terminate_when_unhealthy = terminate_when_unhealthy
        MujocoKernel.__init__(self, num_envs, xml_file or asset(self.default_xml), 4,
                              reset_noise_scale, max_episode_steps, seed)

    def setup(self):
        self.scratch_size = self.nu

    def observation_size(self):
        return self.nq - 1 + self.nv

    cdef void observe(self, const mjData* d, double* obs) noexcept nogil:
        cdef int k
        for k in range(1, self.nq):
            obs[k - 1] = d.qpos[k]
        for k in range(self.nv):
            obs[self.nq - 1 + k] = _clip(d.qvel[k], -10.0, 10.0)


cdef class HopperKernel(_PlanarWalkerKernel):
    """Hopper-v5: obs (qpos[1:], clip(qvel, ±10)), reward x-velocity + 1 (healthy)
    − 1e-3 |a|², terminated when unhealthy: not (z > 0.7, |angle| < 0.2,
    |qpos[2:], qvel| < 100)."""
    expected_sizes = (6, 6, 3)
    default_xml = "hopper.xml"

    cdef int reward_and_termination(self, const mjData* d, const double* action,
                                    double x_before, double* scratch,
                                    double* reward) noexcept nogil:
        cdef double x_velocity = (d.qpos[0] - x_before) / self.dt
        cdef double z = d.qpos[1], angle = d.qpos[2]
        cdef bint healthy = 0.7 < z and -0.2 < angle < 0.2
        cdef int k
        for k in range(2, self.nq):
            healthy = healthy and -100.0 < d.qpos[k] < 100.0
        for k in range(self.nv):
            healthy = healthy and -100.0 < d.qvel[k] < 100.0
        reward[0] = (1.0 * x_velocity + (1.0 if healthy else 0.0)) \
            - 1e-3 * _sum_squares(action, self.nu, scratch)
        return self.terminate_when_unhealthy and not healthy


cdef class Walker2dKernel(_PlanarWalkerKernel):
    """Walker2d-v5: obs (qpos[1:], clip(qvel, ±10)), reward x-velocity + 1 (healthy)
    − 1e-3 |a|², terminated when not (0.8 < z < 2, |angle| < 1)."""
    expected_sizes = (9, 9, 6)
    default_xml = "walker2d_v5.xml"

    cdef int reward_and_termination(self, const mjData* d, const double* action,
                                    double x_before, double* scratch,
                                    double* reward) noexcept nogil:
        cdef double x_velocity = (d.qpos[0] - x_before) / self.dt
        cdef double z = d.qpos[1], angle = d.qpos[2]
        cdef bint healthy = 0.8 < z < 2.0 and -1.0 < angle < 1.0
        reward[0] = (1.0 * x_velocity + (1.0 if healthy else 0.0)) \
            - 1e-3 * _sum_squares(action, self.nu, scratch)
        return self.terminate_when_unhealthy and not healthy


cdef class HalfCheetahKernel(MujocoKernel):
    """HalfCheetah-v5: obs (qpos[1:], qvel), reward x-velocity − 0.1 |a|², never
    terminal; reset qvel noise 0.1·N(0, 1)."""
    expected_sizes = (9, 9, 6)

    def __init__(self, Py_ssize_t num_envs=1, seed=None, Py_ssize_t max_episode_steps=1000, *,
                 double reset_noise_scale=0.1, xml_file=None):
        MujocoKernel.__init__(self, num_envs, xml_file or own_asset("half_cheetah.xml"), 5,
                              reset_noise_scale, max_episode_steps, seed)

    def setup(self):
        self.scratch_size = self.nu

    def observation_size(self):
        return self.nq - 1 + self.nv

    cdef void draw_state(self, mjData* d, bitgen_t* bitgen) noexcept nogil:
        _draw_uniform_normal(d, self.nq, self.nv, self.reset_noise_scale, bitgen)

    cdef void observe(self, const mjData* d, double* obs) noexcept nogil:
        cdef int k
        for k in range(1, self.nq):
            obs[k - 1] = d.qpos[k]
        for k in range(self.nv):
            obs[self.nq - 1 + k] = d.qvel[k]

    cdef int reward_and_termination(self, const mjData* d, const double* action,
                                    double x_before, double* scratch,
                                    double* reward) noexcept nogil:
        cdef double x_velocity = (d.qpos[0] - x_before) / self.dt
        reward[0] = 1.0 * x_velocity - 0.1 * _sum_squares(action, self.nu, scratch)
        return 0


cdef void _draw_uniform_normal(mjData* d, int nq, int nv, double s, bitgen_t* bitgen) noexcept nogil:
    # qpos += U(-s, s), then qvel += s·N(0, 1) (HalfCheetah, Ant, InvertedDoublePendulum).
    cdef int k
    for k in range(nq):
        d.qpos[k] = d.qpos[k] + random_uniform(bitgen, -s, s - (-s))
    for k in range(nv):
        d.qvel[k] = d.qvel[k] + s * random_standard_normal(bitgen)


cdef class SwimmerKernel(MujocoKernel):
    """Swimmer-v5: obs (qpos[2:], qvel), reward x-velocity − 1e-4 |a|², never terminal."""
    expected_sizes = (5, 5, 2)

    def __init__(self, Py_ssize_t num_envs=1, seed=None, Py_ssize_t max_episode_steps=1000, *,
                 double reset_noise_scale=0.1, xml_file=None):
        MujocoKernel.__init__(self, num_envs, xml_file or asset("swimmer.xml"), 4,
                              reset_noise_scale, max_episode_steps, seed)

    def setup(self):
        self.scratch_size = self.nu

    def observation_size(self):
        return self.nq - 2 + self.nv

    cdef void observe(self, const mjData* d, double* obs) noexcept nogil:
        cdef int k
        for k in range(2, self.nq):
            obs[k - 2] = d.qpos[k]
        for k in range(self.nv):
            obs[self.nq - 2 + k] = d.qvel[k]

    cdef int reward_and_termination(self, const mjData* d, const double* action,
                                    double x_before, double* scratch,
                                    double* reward) noexcept nogil:
        cdef double x_velocity = (d.qpos[0] - x_before) / self.dt
        reward[0] = 1.0 * x_velocity - 1e-4 * _sum_squares(action, self.nu, scratch)
        return 0


cdef class AntKernel(MujocoKernel):
    """Ant-v5: obs (qpos[2:], qvel, clip(cfrc_ext[1:], ±1)), reward torso x-velocity
    + 1 (healthy) − 0.5 |a|² − 5e-4 |clip(cfrc_ext, ±1)|², terminated when the
    state is not finite or the torso's z leaves [0.2, 1]; reset qvel noise 0.1·N(0, 1)."""
    cdef readonly bint terminate_when_unhealthy
    cdef int torso, nbody
    expected_sizes = (15, 14, 8)

    def __init__(self, Py_ssize_t num_envs=1, seed=None, Py_ssize_t max_episode_steps=1000, *,
                 bint terminate_when_unhealthy=True, double reset_noise_scale=0.1,
                 xml_file=None):
        self.terminate_when_unhealthy = terminate_when_unhealthy
        MujocoKernel.__init__(self, num_envs, xml_file or asset("ant.xml"), 5,
                              reset_noise_scale, max_episode_steps, seed)

    def setup(self):
        self.torso = 1                  # Gymnasium's main_body=1
        self.nbody = self.model.nbody
        self.scratch_size = max(self.nu, 6 * self.nbody)
        self.post_constraint = True

    def observation_size(self):
        return self.nq - 2 + self.nv + 6 * (self.model.nbody - 1)

    cdef void draw_state(self, mjData* d, bitgen_t* bitgen) noexcept nogil:
        _draw_uniform_normal(d, self.nq, self.nv, self.reset_noise_scale, bitgen)

    cdef double x_position(self, const mjData* d) noexcept nogil:
        return d.xpos[3 * self.torso]

    cdef void observe(self, const mjData* d, double* obs) noexcept nogil:
        cdef int k, o = 0
        for k in range(2, self.nq):
            obs[o] = d.qpos[k]
            o += 1
        for k in range(self.nv):
            obs[o] = d.qvel[k]
            o += 1
        for k in range(6, 6 * self.nbody):
            obs[o] = _clip(d.cfrc_ext[k], -1.0, 1.0)
            o += 1

    cdef int reward_and_termination(self, const mjData* d, const double* action,
                                    double x_before, double* scratch,
                                    double* reward) noexcept nogil:
        cdef double x_velocity = (d.xpos[3 * self.torso] - x_before) / self.dt
        cdef double z = d.qpos[2], ctrl_cost, contact_cost, c
        cdef bint healthy = 0.2 <= z <= 1.0
        cdef int k
        for k in range(self.nq):
            healthy = healthy and isfinite(d.qpos[k])
        for k in range(self.nv):
            healthy = healthy and isfinite(d.qvel[k])
        ctrl_cost = 0.5 * _sum_squares(action, self.nu, scratch)
        for k in range(6 * self.nbody):
            c = _clip(d.cfrc_ext[k], -1.0, 1.0)
            scratch[k] = c * c
        contact_cost = 5e-4 * _np_sum(scratch, 6 * self.nbody)
        reward[0] = (x_velocity * 1.0 + (1.0 if healthy else 0.0)) - (ctrl_cost + contact_cost)
        return self.terminate_when_unhealthy and not healthy


cdef class HumanoidKernel(MujocoKernel):
    """Humanoid-v5: obs (qpos[2:], qvel, cinert[1:], cvel[1:], qfrc_actuator[6:],
    cfrc_ext[1:]), reward 1.25 · (centre-of-mass x-velocity) + 5 (healthy)
    − 0.1 |ctrl|² − min(5e-7 |cfrc_ext|², 10), terminated when the torso's z leaves
    (1, 2); reset noise U(-0.01, 0.01) on qpos and qvel."""
    cdef readonly bint terminate_when_unhealthy
    cdef int nbody
    cdef double total_mass         # body_mass.sum(), numpy's summation
    expected_sizes = (24, 23, 17)

    def __init__(self, Py_ssize_t num_envs=1, seed=None, Py_ssize_t max_episode_steps=1000, *,
                 bint terminate_when_unhealthy=True, double reset_noise_scale=1e-2,
                 xml_file=None):
        self.terminate_when_unhealthy = terminate_when_unhealthy
        MujocoKernel.__init__(self, num_envs, xml_file or asset("humanoid.xml"), 5,
                              reset_noise_scale, max_episode_steps, seed)

    def setup(self):
        self.nbody = self.model.nbody
        self.total_mass = _np_sum(self.model.body_mass, self.nbody)
        self.scratch_size = max(self.nu, 6 * self.nbody)
        self.post_constraint = True     # cfrc_ext, as Gymnasium's mj_rnePostConstraint

    def observation_size(self):
        return (self.nq - 2) + self.nv + 16 * (self.nbody - 1) + (self.nv - 6) \
            + 6 * (self.nbody - 1)

    cdef double x_position(self, const mjData* d) noexcept nogil:
        # Gymnasium's mass_center: np.einsum("b,bj->j", body_mass, xipos)[0] / body_mass.sum();
        # einsum adds the products in body order, one rounding each.
        cdef double weighted = 0.0
        cdef int b
        for b in range(self.nbody):
            weighted = weighted + self.model.body_mass[b] * d.xipos[3 * b]
        return weighted / self.total_mass

    cdef void observe(self, const mjData* d, double* obs) noexcept nogil:
        cdef int k, o = 0
        for k in range(2, self.nq):
            obs[o] = d.qpos[k]
            o += 1
        for k in range(self.nv):
            obs[o] = d.qvel[k]
            o += 1
        for k in range(10, 10 * self.nbody):
            obs[o] = d.cinert[k]
            o += 1
        for k in range(6, 6 * self.nbody):
            obs[o] = d.cvel[k]
            o += 1
        for k in range(6, self.nv):
            obs[o] = d.qfrc_actuator[k]
            o += 1
        for k in range(6, 6 * self.nbody):
            obs[o] = d.cfrc_ext[k]
            o += 1

    cdef int reward_and_termination(self, const mjData* d, const double* action,
                                    double x_before, double* scratch,
                                    double* reward) noexcept nogil:
        cdef double x_velocity = (self.x_position(d) - x_before) / self.dt
        cdef double z = d.qpos[2], ctrl_cost, contact_cost
        cdef bint healthy = 1.0 < z < 2.0
        ctrl_cost = 0.1 * _sum_squares(d.ctrl, self.nu, scratch)
        contact_cost = _clip(5e-7 * _sum_squares(d.cfrc_ext, 6 * self.nbody, scratch),
                             -INFINITY, 10.0)
        reward[0] = (1.25 * x_velocity + (5.0 if healthy else 0.0)) - (ctrl_cost + contact_cost)
        return self.terminate_when_unhealthy and not healthy


# ---- balance and reaching -------------------------------------------------


cdef class InvertedPendulumKernel(MujocoKernel):
    """InvertedPendulum-v5: obs (qpos, qvel), reward 1 while |angle| ≤ 0.2,
    terminated when |angle| > 0.2 or the observation is not finite."""
    expected_sizes = (2, 2, 1)

    def __init__(self, Py_ssize_t num_envs=1, seed=None, Py_ssize_t max_episode_steps=1000, *,
                 double reset_noise_scale=0.01, xml_file=None):
        MujocoKernel.__init__(self, num_envs, xml_file or asset("inverted_pendulum.xml"), 2,
                              reset_noise_scale, max_episode_steps, seed)

    def observation_size(self):
        return self.nq + self.nv

    cdef void observe(self, const mjData* d, double* obs) noexcept nogil:
        cdef int k
        for k in range(self.nq):
            obs[k] = d.qpos[k]
        for k in range(self.nv):
            obs[self.nq + k] = d.qvel[k]

    cdef int reward_and_termination(self, const mjData* d, const double* action,
                                    double x_before, double* scratch,
                                    double* reward) noexcept nogil:
        cdef bint finite = True
        cdef int k
        for k in range(self.nq):
            finite = finite and isfinite(d.qpos[k])
        for k in range(self.nv):
            finite = finite and isfinite(d.qvel[k])
        cdef bint terminated = not finite or fabs(d.qpos[1]) > 0.2
        reward[0] = 0.0 if terminated else 1.0
        return terminated


cdef class InvertedDoublePendulumKernel(MujocoKernel):
    """InvertedDoublePendulum-v5: obs (x, sin θ, cos θ, clip(qvel, ±10),
    clip(qfrc_constraint[0], ±10)); with (x, y) the tip site, reward
    10 (alive) − (0.01 x² + (y − 2)²) − (1e-3 ω₁² + 5e-3 ω₂²), terminated when
    y ≤ 1; reset qvel noise 0.1·N(0, 1)."""
    expected_sizes = (3, 3, 1)

    def __init__(self, Py_ssize_t num_envs=1, seed=None, Py_ssize_t max_episode_steps=1000, *,
                 double reset_noise_scale=0.1, xml_file=None):
        MujocoKernel.__init__(self, num_envs,
                              xml_file or asset("inverted_double_pendulum.xml"), 5,
                              reset_noise_scale, max_episode_steps, seed)

    def setup(self):
        if self.model.nsite < 1:
            raise ValueError("xml_file: the model has no site for the pendulum's tip")

    def observation_size(self):
        return 1 + 2 * (self.nq - 1) + self.nv + 1

    cdef void draw_state(self, mjData* d, bitgen_t* bitgen) noexcept nogil:
        _draw_uniform_normal(d, self.nq, self.nv, self.reset_noise_scale, bitgen)

    cdef void observe(self, const mjData* d, double* obs) noexcept nogil:
        cdef int k, n = self.nq - 1
        obs[0] = d.qpos[0]
        for k in range(n):
            obs[1 + k] = sin(d.qpos[1 + k])
            obs[1 + n + k] = cos(d.qpos[1 + k])
        for k in range(self.nv):
            obs[1 + 2 * n + k] = _clip(d.qvel[k], -10.0, 10.0)
        obs[1 + 2 * n + self.nv] = _clip(d.qfrc_constraint[0], -10.0, 10.0)

    cdef int reward_and_termination(self, const mjData* d, const double* action,
                                    double x_before, double* scratch,
                                    double* reward) noexcept nogil:
        cdef double x = d.site_xpos[0], y = d.site_xpos[2]
        cdef double v1 = d.qvel[1], v2 = d.qvel[2]
        cdef bint terminated = y <= 1.0
        cdef double dist_penalty = 0.01 * pow(x, 2.0) + pow(y - 2.0, 2.0)
        cdef double vel_penalty = 1e-3 * pow(v1, 2.0) + 5e-3 * pow(v2, 2.0)
        reward[0] = ((10.0 if not terminated else 0.0) - dist_penalty) - vel_penalty
        return terminated


cdef class ReacherKernel(MujocoKernel):
    """Reacher-v5: obs (cos θ, sin θ, target xy, ω, (fingertip − target)xy), reward
    −|fingertip − target| − |a|², never terminal; the target is drawn uniformly in
    the disc of radius 0.2 (rejection from the square, as Gymnasium)."""
    cdef int fingertip, target
    expected_sizes = (4, 4, 2)

    def __init__(self, Py_ssize_t num_envs=1, seed=None, Py_ssize_t max_episode_steps=50, *,
                 xml_file=None):
        MujocoKernel.__init__(self, num_envs, xml_file or asset("reacher.xml"), 2,
                              0.0, max_episode_steps, seed)

    def setup(self):
        self.fingertip = self._body_id("fingertip")
        self.target = self._body_id("target")
        self.scratch_size = self.nu

    def observation_size(self):
        return 10

    cdef void draw_state(self, mjData* d, bitgen_t* bitgen) noexcept nogil:
        cdef int k
        cdef double gx, gy
        for k in range(self.nq):
            d.qpos[k] = random_uniform(bitgen, -0.1, 0.1 - (-0.1)) + d.qpos[k]
        while True:
            gx = random_uniform(bitgen, -0.2, 0.2 - (-0.2))
            gy = random_uniform(bitgen, -0.2, 0.2 - (-0.2))
            if _norm2(gx, gy) < 0.2:
                break
        d.qpos[self.nq - 2] = gx
        d.qpos[self.nq - 1] = gy
        for k in range(self.nv):
            d.qvel[k] = d.qvel[k] + random_uniform(bitgen, -0.005, 0.005 - (-0.005))
        d.qvel[self.nv - 2] = 0.0
        d.qvel[self.nv - 1] = 0.0

    cdef void observe(self, const mjData* d, double* obs) noexcept nogil:
        cdef const double* tip = d.xpos + 3 * self.fingertip
        cdef const double* goal = d.xpos + 3 * self.target
        obs[0] = cos(d.qpos[0])
        obs[1] = cos(d.qpos[1])
        obs[2] = sin(d.qpos[0])
        obs[3] = sin(d.qpos[1])
        obs[4] = d.qpos[2]
        obs[5] = d.qpos[3]
        obs[6] = d.qvel[0]
        obs[7] = d.qvel[1]
        obs[8] = tip[0] - goal[0]
        obs[9] = tip[1] - goal[1]

    cdef int reward_and_termination(self, const mjData* d, const double* action,
                                    double x_before, double* scratch,
                                    double* reward) noexcept nogil:
        cdef double vec[3]
        cdef int k
        for k in range(3):
            vec[k] = d.xpos[3 * self.fingertip + k] - d.xpos[3 * self.target + k]
        reward[0] = -_norm3(vec) + (-_sum_squares(action, self.nu, scratch))
        return 0
