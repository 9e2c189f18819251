# cython: language_level=3
"""The policy kernels' contract (``PolicyKernel``, see ``_policies.pxd``) and
``NetPolicy``, a policy π(a | s) = head(a | z) with z = Net(θ, s) the outputs of
a tanh MLP (``_net.pyx``). The heads are subclasses: ``SoftmaxKernel``
(``_softmax.pyx``) and ``GaussianKernel`` (``_gaussian.pyx``). Python wrapper:
``pgfast/policies.py``, whose policy objects expose these as ``policy.kernel``.

The ``cdef`` methods trust their inputs (the rollout loop calls them with no
Python per step). The ``*_into`` Python entry points check, once per call, that
every array has the shape this kernel needs (dtype and contiguity are checked by
their typed memoryviews), so a wrong shape is a ValueError naming the argument,
never a write out of bounds; they do not check values (finite, in range), which
is the wrappers' job.

Flat parameter layout: the network's [W0, b0, ..., W_{L-1}, b_{L-1}], then the
head's own parameters (Gaussian: log_std, when learned).
"""
from cython.parallel cimport prange
from libc.float cimport DBL_MAX
from libc.math cimport fabs
from libc.stdlib cimport free, malloc
from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport random_standard_normal, random_standard_uniform

from pgfast._common cimport alloc_doubles, as_size, as_threads, bitgen_of, check_len, check_shape
from pgfast._net cimport Net


cdef class PolicyKernel:
    """The C-level policy interface (see _policies.pxd); concrete kernels override it."""

    cdef void sample(self, const double* theta, const double* obs, Py_ssize_t n,
                     bitgen_t* bitgen, double* work,
                     double* actions, double* logp) noexcept nogil:
        pass

    cdef void mode(self, const double* theta, const double* obs, Py_ssize_t n,
                   double* work, double* actions) noexcept nogil:
        pass

    cdef void sample_rows(self, const double** thetas, const double* obs, Py_ssize_t n,
                          bitgen_t** bitgens, double* work,
                          double* actions, double* logp) noexcept nogil:
        cdef Py_ssize_t i
        for i in range(n):
            self.sample(thetas[i], obs + i * self.obs_dim, 1, bitgens[i], work,
                        actions + i * self.act_dim, logp + i)

    cdef void mode_rows(self, const double** thetas, const double* obs, Py_ssize_t n,
                        double* work, double* actions) noexcept nogil:
        cdef Py_ssize_t i
        for i in range(n):
            self.mode(thetas[i], obs + i * self.obs_dim, 1, work, actions + i * self.act_dim)


cdef class NetPolicy(PolicyKernel):
    """A policy π(a | s) = head(a | z), z = Net(θ, s). Subclasses give the head:
    its log-likelihood score, KL, entropy, Fisher metric, sampling and mode."""
    cdef void _setup(self, Net net, Py_ssize_t n_extra):
        self.net = net
        self.n_extra = n_extra
        self.obs_dim = net.in_dim
        self.n_params = net.n_params + n_extra
        self.work_size = net.sum_hidden + net.out_dim

    # The head, per row of outputs z (n, out_dim) -------------------------

    cdef void head_score(self, const double* theta, const double* z, const double* actions,
                         const double* weights, Py_ssize_t n, double* dz, double* extra,
                         double* logp) noexcept nogil:
        """dz ← w_i ∂log π/∂z_i, extra (n, n_extra) ← w_i ∂log π/∂(head params),
        logp ← log π (when not NULL); weights NULL means 1."""
        pass

    cdef bint fused_scores(self, const double* theta, const double* obs,
                           const double* actions, const double* weights, Py_ssize_t n,
                           double* grad, double* rows, Py_ssize_t ld) noexcept nogil:
        """One-pass scores, for the architectures that have them: with weights,
        grad (zeroed) += Σ_i w_i ∇θ log π(a_i | s_i); without (NULL), row i of rows
        (stride ld) ← ∇θ log π(a_i | s_i). Returns False when there are none."""
        return False

    cdef void head_kl(self, const double* theta_old, const double* z_old,
                      const double* theta_new, const double* z_new, Py_ssize_t n,
                      double* kl, double* dz, double* extra) noexcept nogil:
        """kl ← KL(old ‖ new) per row; when dz is not NULL, dz (n, out_dim) and
        extra (n_extra,) ← the gradient of the mean KL with respect to z_new and the
        new head parameters."""
        pass

    cdef void head_entropy(self, const double* theta, const double* z, Py_ssize_t n,
                           double* ent) noexcept nogil:
        pass

    cdef void head_entropy_grad(self, const double* theta, const double* z, Py_ssize_t n,
                                double* dz, double* extra) noexcept nogil:
        """dz (n, out_dim) and extra (n_extra,) ← the gradient of the mean entropy
        with respect to z and the head parameters."""
        pass

    cdef void head_fisher(self, const double* theta, const double* z, Py_ssize_t n,
                          double* t, Py_ssize_t n_total) noexcept nogil:
        """t_i ← M_i t_i / n_total for the n rows, with M_i the Fisher metric of the
        head in z (n_total: the rows of the whole batch, of which these are a block)."""
        pass

    cdef void head_fisher_extra(self, const double* theta, const double* v,
                                double* out) noexcept nogil:
        """The head parameters' block of the Fisher product (no cross terms)."""
        pass

    cdef void head_sample(self, const double* theta, double* z, Py_ssize_t n,
                          double* actions, double* logp) noexcept nogil:
        """actions (n, act_dim) holds the rows' noise on entry (see normal_noise)
        and their actions on return; logp ← their log-probabilities."""
        pass

    cdef void head_mode(self, const double* theta, const double* z, Py_ssize_t n,
                        double* actions) noexcept nogil:
        pass

    # The C-level contract -------------------------------------------------

    cdef void sample(self, const double* theta, const double* obs, Py_ssize_t n,
                     bitgen_t* bitgen, double* work,
                     double* actions, double* logp) noexcept nogil:
        # The forward pass is row by row (no BLAS) and the noise is drawn in row
        # order, so a row's action does not depend on the batch it came in.
        cdef double* z = work + n * self.net.sum_hidden
        self.net.forward(theta, obs, n, work, z, False)
        _draw_noise(self.normal_noise, bitgen, n * self.act_dim, actions)
        self.head_sample(theta, z, n, actions, logp)

    cdef void mode(self, const double* theta, const double* obs, Py_ssize_t n,
                   double* work, double* actions) noexcept nogil:
        cdef double* z = work + n * self.net.sum_hidden
        self.net.forward(theta, obs, n, work, z, False)
        self.head_mode(theta, z, n, actions)

    cdef void sample_rows(self, const double** thetas, const double* obs, Py_ssize_t n,
                          bitgen_t** bitgens, double* work,
                          double* actions, double* logp) noexcept nogil:
        cdef Py_ssize_t i, A = self.act_dim
        for i in range(n):
            _draw_noise(self.normal_noise, bitgens[i], A, actions + i * A)
        cdef double* z = work + n * self.net.sum_hidden
        if shared_theta(thetas, n):
            self.net.forward(thetas[0], obs, n, work, z, False)
            self.head_sample(thetas[0], z, n, actions, logp)
            return
        for i in range(n):
            self.net.forward(thetas[i], obs + i * self.obs_dim, 1, work, z, False)
            self.head_sample(thetas[i], z, 1, actions + i * A, logp + i)

    cdef void mode_rows(self, const double** thetas, const double* obs, Py_ssize_t n,
                        double* work, double* actions) noexcept nogil:
        cdef Py_ssize_t i
        cdef double* z = work + n * self.net.sum_hidden
        if shared_theta(thetas, n):
            self.mode(thetas[0], obs, n, work, actions)
            return
        for i in range(n):
            self.net.forward(thetas[i], obs + i * self.obs_dim, 1, work, z, False)
            self.head_mode(thetas[i], z, 1, actions + i * self.act_dim)

    # Python entry points ------------------------------------------------

    cdef int _check(self, const double[::1] theta, const double[:, ::1] obs,
                    str name="theta") except -1:
        check_len(name, theta.shape[0], self.n_params)
        check_shape("obs", obs.shape[0], obs.shape[1], obs.shape[0], self.obs_dim)
        return 0

    def sample_into(self, const double[::1] theta, const double[:, ::1] obs, rng,
                    double[:, ::1] actions, double[::1] logp):
        """actions (n, act_dim), logp (n,) ← a sample per row of obs, from rng."""
        cdef Py_ssize_t n = obs.shape[0]
        cdef double* work = NULL
        cdef bitgen_t* bitgen = bitgen_of(rng)
        self._check(theta, obs)
        check_shape("actions", actions.shape[0], actions.shape[1], n, self.act_dim)
        check_len("logp", logp.shape[0], n)
        if n == 0:
            return
        try:
            work = alloc_doubles(n * self.work_size)
            with rng.bit_generator.lock, nogil:
                self.sample(&theta[0], &obs[0, 0], n, bitgen, work, &actions[0, 0], &logp[0])
        finally:
            free(work)

    def sample_rows_into(self, const double[:, ::1] thetas, const double[:, ::1] obs,
                         generators, double[:, ::1] actions, double[::1] logp):
        """actions (n, act_dim), logp (n,) <- a sample per row of obs, row i from
        generators[i] with θ = thetas[i] (thetas of one row: that θ for every row).
        Row i draws what sample_into(θ_i, obs[i:i+1], generators[i]) draws."""
        cdef Py_ssize_t n = obs.shape[0], i
        cdef Py_ssize_t shared = thetas.shape[0] == 1
        cdef double* work = NULL
        cdef const double** rows = NULL
        cdef bitgen_t** bitgens = NULL
        check_shape("thetas", thetas.shape[0], thetas.shape[1], 1 if shared else n,
                    self.n_params)
        check_shape("obs", obs.shape[0], obs.shape[1], n, self.obs_dim)
        check_len("generators", len(generators), n)
        check_shape("actions", actions.shape[0], actions.shape[1], n, self.act_dim)
        check_len("logp", logp.shape[0], n)
        if n == 0:
            return
        locks = [g.bit_generator.lock for g in generators]
        try:
            rows = <const double**> malloc(n * sizeof(double*))
            bitgens = <bitgen_t**> malloc(n * sizeof(bitgen_t*))
            work = alloc_doubles(n * self.work_size)
            if rows == NULL or bitgens == NULL:
                raise MemoryError("sample_rows_into: could not allocate the row pointers")
            for i in range(n):
                rows[i] = &thetas[0 if shared else i, 0]
                bitgens[i] = bitgen_of(generators[i])
            for lock in locks:
                lock.acquire()
            try:
                with nogil:
                    self.sample_rows(rows, &obs[0, 0], n, bitgens, work, &actions[0, 0],
                                     &logp[0])
            finally:
                for lock in locks:
                    lock.release()
        finally:
            free(work)
            free(bitgens)
            free(<void*> rows)

    def mode_into(self, const double[::1] theta, const double[:, ::1] obs,
                  double[:, ::1] actions):
        """actions (n, act_dim) ← the most likely action per row of obs."""
        cdef Py_ssize_t n = obs.shape[0]
        cdef double* work = NULL
        self._check(theta, obs)
        check_shape("actions", actions.shape[0], actions.shape[1], n, self.act_dim)
        if n == 0:
            return
        try:
            work = alloc_doubles(n * self.work_size)
            with nogil:
                self.mode(&theta[0], &obs[0, 0], n, work, &actions[0, 0])
        finally:
            free(work)

    def outputs_into(self, const double[::1] theta, const double[:, ::1] obs,
                     double[:, ::1] z):
        """z (n, out_dim) ← the network's outputs (logits / means)."""
        self._check(theta, obs)
        self.net.predict(theta[:self.net.n_params], obs, z)

    def log_prob_into(self, const double[::1] theta, const double[:, ::1] obs,
                      const double[:, ::1] actions, double[::1] logp):
        """logp (n,) ← log π(a_i | s_i)."""
        cdef Py_ssize_t n = obs.shape[0], m = self.net.out_dim
        cdef double* hid = NULL
        cdef double* z = NULL
        self._check(theta, obs)
        check_shape("actions", actions.shape[0], actions.shape[1], n, self.act_dim)
        check_len("logp", logp.shape[0], n)
        if n == 0:
            return
        try:
            hid = alloc_doubles(n * self.net.sum_hidden)
            z = alloc_doubles(2 * n * m + n * self.n_extra)
            self.net.forward_batch(&theta[0], &obs[0, 0], n, hid, z)
            with nogil:
                self.head_score(&theta[0], z, &actions[0, 0], NULL, n, z + n * m,
                                z + 2 * n * m, &logp[0])
        finally:
            free(hid)
            free(z)

    def grad_log_prob_into(self, const double[::1] theta, const double[:, ::1] obs,
                           const double[:, ::1] actions, weights, double[::1] grad,
                           double[:, ::1] rows, num_threads=1):
        """weights None: rows (n, n_params) ← ∇θ log π(a_i | s_i), written by
        num_threads threads (grad unused). Otherwise grad (n_params,) ←
        Σ_i w_i ∇θ log π(a_i | s_i), without rows (unused).

        Returns True when the rows are surely finite (bounded as they were written,
        see Net._score_row); False where the caller must check them (and always
        with weights, whose P sums the caller checks)."""
        cdef Py_ssize_t i, k, n = obs.shape[0], m = self.net.out_dim
        cdef Py_ssize_t P = self.n_params, p_net = self.net.n_params, ne = self.n_extra
        cdef int threads = as_threads(num_threads)
        cdef const double[::1] w
        cdef const double* wp = NULL
        cdef double* gp = NULL
        cdef double* rp = NULL
        cdef double* hid = NULL
        cdef double* z = NULL
        cdef double* extra = NULL
        cdef double* scratch = NULL
        cdef bint done = False, bounded = False
        self._check(theta, obs)
        check_shape("actions", actions.shape[0], actions.shape[1], n, self.act_dim)
        if weights is None:
            check_shape("rows", rows.shape[0], rows.shape[1], n, P)
            if n == 0:
                return False
            rp = &rows[0, 0]
        else:
            w = weights
            check_len("weights", w.shape[0], n)
            check_len("grad", grad.shape[0], P)
            gp = &grad[0]
            for i in range(P):
                gp[i] = 0.0
            if n == 0:
                return False
            wp = &w[0]
        with nogil:
            done = self.fused_scores(&theta[0], &obs[0, 0], &actions[0, 0], wp, n, gp, rp, P)
        if done:
            return False
        try:
            hid = alloc_doubles(n * self.net.sum_hidden)
            z = alloc_doubles(2 * n * m)
            extra = alloc_doubles(n * ne)
            scratch = alloc_doubles(n * self.net.sum_hidden)
            self.net.forward_batch(&theta[0], &obs[0, 0], n, hid, z)
            with nogil:
                self.head_score(&theta[0], z, &actions[0, 0], wp, n, z + n * m, extra, NULL)
                if wp == NULL:
                    bounded = self.net.backward(&theta[0], &obs[0, 0], n, hid, z + n * m,
                                                scratch, rp, P, threads)
                    for i in range(n):
                        for k in range(ne):
                            rp[i * P + p_net + k] = extra[i * ne + k]
                            bounded = bounded and fabs(extra[i * ne + k]) <= DBL_MAX
                else:
                    self.net.backward(&theta[0], &obs[0, 0], n, hid, z + n * m, scratch,
                                      gp, 0)
                    for i in range(n):
                        for k in range(ne):
                            gp[p_net + k] += extra[i * ne + k]
        finally:
            free(hid)
            free(z)
            free(extra)
            free(scratch)
        return bounded

    def kl_into(self, const double[::1] theta_old, const double[::1] theta_new,
                const double[:, ::1] obs, double[::1] kl, grad):
        """kl (n,) ← KL(π_old(·|s_i) ‖ π_new(·|s_i)); grad (n_params,) or None ←
        the gradient of the mean KL with respect to theta_new (n ≥ 1)."""
        cdef Py_ssize_t i, n = obs.shape[0], m = self.net.out_dim
        cdef Py_ssize_t p_net = self.net.n_params
        cdef double[::1] g
        cdef double* gp = NULL
        cdef double* hid = NULL
        cdef double* z = NULL
        cdef double* scratch = NULL
        cdef double* hid_new
        self._check(theta_old, obs, "theta_old")
        check_len("theta_new", theta_new.shape[0], self.n_params)
        check_len("kl", kl.shape[0], n)
        if grad is not None:
            g = grad
            check_len("grad", g.shape[0], self.n_params)
            if n == 0:
                raise ValueError("obs: the mean KL needs at least one observation, got 0")
            gp = &g[0]
        if n == 0:
            return
        try:
            hid = alloc_doubles(2 * n * self.net.sum_hidden)
            z = alloc_doubles(3 * n * m)
            scratch = alloc_doubles(n * self.net.sum_hidden)
            hid_new = hid + n * self.net.sum_hidden
            self.net.forward_batch(&theta_old[0], &obs[0, 0], n, hid, z)
            self.net.forward_batch(&theta_new[0], &obs[0, 0], n, hid_new, z + n * m)
            with nogil:
                if gp == NULL:
                    self.head_kl(&theta_old[0], z, &theta_new[0], z + n * m, n, &kl[0],
                                 NULL, NULL)
                else:
                    for i in range(self.n_params):
                        gp[i] = 0.0
                    self.head_kl(&theta_old[0], z, &theta_new[0], z + n * m, n, &kl[0],
                                 z + 2 * n * m, gp + p_net)
                    self.net.backward(&theta_new[0], &obs[0, 0], n, hid_new, z + 2 * n * m,
                                      scratch, gp, 0)
        finally:
            free(hid)
            free(z)
            free(scratch)

    def entropy_into(self, const double[::1] theta, const double[:, ::1] obs,
                     double[::1] ent):
        """ent (n,) ← the entropy of π(·|s_i)."""
        cdef Py_ssize_t n = obs.shape[0]
        cdef double* hid = NULL
        cdef double* z = NULL
        self._check(theta, obs)
        check_len("ent", ent.shape[0], n)
        if n == 0:
            return
        try:
            hid = alloc_doubles(n * self.net.sum_hidden)
            z = alloc_doubles(n * self.net.out_dim)
            self.net.forward_batch(&theta[0], &obs[0, 0], n, hid, z)
            with nogil:
                self.head_entropy(&theta[0], z, n, &ent[0])
        finally:
            free(hid)
            free(z)

    def entropy_grad_into(self, const double[::1] theta, const double[:, ::1] obs,
                          double[::1] grad):
        """grad (n_params,) ← ∇θ (1/n) Σ_i H(π(·|s_i)) (n ≥ 1)."""
        cdef Py_ssize_t i, n = obs.shape[0], m = self.net.out_dim
        cdef double* hid = NULL
        cdef double* z = NULL
        cdef double* scratch = NULL
        self._check(theta, obs)
        check_len("grad", grad.shape[0], self.n_params)
        if n == 0:
            raise ValueError("obs: the mean entropy needs at least one observation, got 0")
        try:
            hid = alloc_doubles(n * self.net.sum_hidden)
            z = alloc_doubles(2 * n * m)
            scratch = alloc_doubles(n * self.net.sum_hidden)
            self.net.forward_batch(&theta[0], &obs[0, 0], n, hid, z)
            with nogil:
                for i in range(self.n_params):
                    grad[i] = 0.0
                self.head_entropy_grad(&theta[0], z, n, z + n * m,
                                       &grad[0] + self.net.n_params)
                self.net.backward(&theta[0], &obs[0, 0], n, hid, z + n * m, scratch,
                                  &grad[0], 0)
        finally:
            free(hid)
            free(z)
            free(scratch)

    # Fisher-vector products split the batch into fixed blocks of consecutive rows,
    # sized by the batch alone (_block_rows), each summed on its own, the sums added
    # in block order: the product is the same bit for bit on any number of threads.
    # A block's forward pass (hidden activations, then outputs) starts at row
    # r0 (sum_hidden + out_dim) in the cache, so one block is the usual layout.

    def forward_into(self, const double[::1] theta, const double[:, ::1] obs,
                     double[::1] cache, num_threads=1):
        """cache (n (sum_hidden + out_dim),) ← the forward pass, block by block, for
        fvp_into calls that share theta and obs (conjugate gradient); n ≥ 1."""
        cdef Py_ssize_t n = obs.shape[0]
        cdef int threads = as_threads(num_threads)
        self._check(theta, obs)
        _check_rows(n)
        check_len("cache", cache.shape[0], n * (self.net.sum_hidden + self.net.out_dim))
        with nogil:
            self._forward_blocks(&theta[0], &obs[0, 0], n, &cache[0], threads)

    cdef void _forward_blocks(self, const double* theta, const double* obs, Py_ssize_t n,
                              double* cache, int num_threads) noexcept nogil:
        cdef Py_ssize_t k, r0, nb, rows = _block_rows(n), D = self.obs_dim
        cdef Py_ssize_t width = self.net.sum_hidden + self.net.out_dim
        for k in prange((n + rows - 1) // rows, num_threads=num_threads, schedule="static"):
            r0 = k * rows
            nb = min(n, r0 + rows) - r0
            self.net.forward(theta, obs + r0 * D, nb, cache + r0 * width,
                             cache + r0 * width + nb * self.net.sum_hidden, True)

    def fvp_into(self, const double[::1] theta, const double[:, ::1] obs,
                 const double[::1] v, double[::1] out, double[::1] cache=None,
                 num_threads=1):
        """out ← F v, F = (1/n) Σ_i J_iᵀ M_i J_i (+ the head block): J_i the Jacobian
        of the outputs at s_i, M_i the Fisher metric of the head distribution.
        cache: the forward pass from forward_into, or None to compute it here. The
        blocks of rows run on num_threads threads, each into its own sum."""
        cdef Py_ssize_t k, i, n = obs.shape[0], m = self.net.out_dim, P = self.n_params
        cdef Py_ssize_t sh = self.net.sum_hidden, blocks
        cdef int threads = as_threads(num_threads)
        cdef double* own = NULL
        cdef double* t = NULL
        cdef double* scratch = NULL
        cdef double* sums = NULL
        cdef double* fwd
        self._check(theta, obs)
        _check_rows(n)
        check_len("v", v.shape[0], P)
        check_len("out", out.shape[0], P)
        if cache is not None:
            check_len("cache", cache.shape[0], n * (sh + m))
        blocks = (n + _block_rows(n) - 1) // _block_rows(n)
        try:
            if cache is None:
                own = alloc_doubles(n * (sh + m))
                fwd = own
                self.forward_into(theta, obs, <double[:n * (sh + m)]> own, threads)
            else:
                fwd = &cache[0]
            # per block: its JVP t and back-propagated δ (at its rows' offsets), its sum
            t = alloc_doubles(n * m)
            scratch = alloc_doubles(n * sh)
            sums = alloc_doubles(blocks * P)
            with nogil:
                self._fvp_blocks(&theta[0], &v[0], &obs[0, 0], n, fwd, t, scratch, sums,
                                 threads)
                for i in range(P):
                    out[i] = sums[i]
                for k in range(1, blocks):
                    for i in range(P):
                        out[i] += sums[k * P + i]
                self.head_fisher_extra(&theta[0], &v[0], &out[0])
        finally:
            free(own)
            free(t)
            free(scratch)
            free(sums)

    cdef void _fvp_blocks(self, const double* theta, const double* v, const double* obs,
                          Py_ssize_t n, const double* fwd, double* t, double* scratch,
                          double* sums, int num_threads) noexcept nogil:
        cdef Py_ssize_t k, i, r0, nb, rows = _block_rows(n), D = self.obs_dim
        cdef Py_ssize_t m = self.net.out_dim, P = self.n_params, sh = self.net.sum_hidden
        cdef const double* hid
        for k in prange((n + rows - 1) // rows, num_threads=num_threads, schedule="static"):
            r0 = k * rows
            nb = min(n, r0 + rows) - r0
            hid = fwd + r0 * (sh + m)
            self.net.jvp(theta, v, obs + r0 * D, nb, hid, scratch + r0 * sh, t + r0 * m)
            self.head_fisher(theta, hid + nb * sh, nb, t + r0 * m, n)
            for i in range(P):
                sums[k * P + i] = 0.0
            self.net.backward(theta, obs + r0 * D, nb, hid, t + r0 * m, scratch + r0 * sh,
                              sums + k * P, 0)

    def vjp_rows_into(self, const double[::1] theta, const double[:, ::1] obs,
                      const double[:, ::1] dz, double[:, ::1] rows):
        """rows (n, n_params) ← J_iᵀ dz_i in the network columns (head columns untouched)."""
        cdef Py_ssize_t n = obs.shape[0]
        cdef double* hid = NULL
        cdef double* z = NULL
        cdef double* scratch = NULL
        self._check(theta, obs)
        check_shape("dz", dz.shape[0], dz.shape[1], n, self.net.out_dim)
        check_shape("rows", rows.shape[0], rows.shape[1], n, self.n_params)
        if n == 0:
            return
        try:
            hid = alloc_doubles(n * self.net.sum_hidden)
            z = alloc_doubles(n * self.net.out_dim)
            scratch = alloc_doubles(n * self.net.sum_hidden)
            self.net.forward_batch(&theta[0], &obs[0, 0], n, hid, z)
            with nogil:
                self.net.backward(&theta[0], &obs[0, 0], n, hid, &dz[0, 0], scratch,
                                  &rows[0, 0], self.n_params)
        finally:
            free(hid)
            free(z)
            free(scratch)


cdef Net net_of(obs_dim, hidden, out_dim, str out_name):
    widths = [as_size(obs_dim, "obs_dim", 1)]
    widths += [as_size(h, f"hidden[{i}]", 1) for i, h in enumerate(hidden)]
    widths.append(as_size(out_dim, out_name, 1))
    return Net(widths)


cdef int _check_rows(Py_ssize_t n) except -1:
    """The Fisher products need a row."""
    if n == 0:
        raise ValueError("obs: expected at least one observation, got 0")
    return 0


# The Fisher products' row blocks: at least FISHER_BLOCK_ROWS rows (a thread's share
# of work worth its start), at most FISHER_MAX_BLOCKS blocks (bounding the sums' memory).
cdef enum:
    FISHER_BLOCK_ROWS = 128
    FISHER_MAX_BLOCKS = 64


cdef inline Py_ssize_t _block_rows(Py_ssize_t n) noexcept nogil:
    return max(<Py_ssize_t> FISHER_BLOCK_ROWS, (n + FISHER_MAX_BLOCKS - 1) // FISHER_MAX_BLOCKS)


cdef inline void _draw_noise(bint normal, bitgen_t* bitgen, Py_ssize_t count,
                             double* noise) noexcept nogil:
    """count draws of a sample's randomness (see NetPolicy.normal_noise)."""
    cdef Py_ssize_t k
    for k in range(count):
        noise[k] = random_standard_normal(bitgen) if normal else random_standard_uniform(bitgen)
