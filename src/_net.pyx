# cython: language_level=3
"""The network of every policy and value function: a tanh MLP (no hidden layer
= linear map) over row-major batches, with its forward, reverse-mode and
forward-mode passes. Python wrapper: ``pgfast/policies.py``; the policy heads
that sit on its outputs are ``_softmax.pyx`` and ``_gaussian.pyx``.

The wrappers validate; the ``cdef`` methods trust their inputs. The Python
entry points (value functions) check the shapes they are given.

Flat parameter layout (row-major W of shape (in, out), applied as x @ W + b):
    [W0, b0, W1, b1, ..., W_{L-1}, b_{L-1}]

Batched intermediates are laid out row-major, one block per layer: the
activations of hidden layer l for n rows are an (n, h_l) block starting at
n * (h_0 + ... + h_{l-1}), so a whole layer is one BLAS call.
"""
import numpy as np

from cython.parallel cimport prange
from libc.float cimport DBL_MAX
from libc.math cimport fabs, pow, sqrt
from libc.stdlib cimport malloc, free

from pgfast._common cimport (MAX_ELEMENTS, alloc_doubles, as_size, as_threads, check_len,
                             check_shape, checked_mul)
from pgfast._math cimport fast_tanh, gemm_acc, gemm_nt, gemm_tn_acc


cdef class Net:
    """A multilayer perceptron z = W_{L-1}ᵀ h_{L-1} + b_{L-1},
    h_{l+1} = tanh(W_lᵀ h_l + b_l), h_0 = x; no hidden layer is a linear map.

    Parameters
    ----------
    sizes : sequence of int
        (in_dim, hidden..., out_dim); ValueError when a width is not in [1, 2**48]
        or the parameters would not fit in any machine.
    """
    def __cinit__(self, sizes):
        # Sizes from Python are bounded before any C arithmetic, so n_params and
        # every per-row scratch size are exact (no overflow). Messages name the
        # widths as the wrappers' arguments do: obs_dim, hidden[i], out_dim;
        # a total too large for any machine is blamed on `hidden`.
        cdef Py_ssize_t l, L, off = 0, hoff = 0
        cdef str name = "hidden"
        L = len(sizes) - 1
        if L < 1:
            raise ValueError(f"sizes: expected at least an input and an output width, "
                             f"got {len(sizes)} widths")
        widths = [as_size(w, "obs_dim" if i == 0 else "out_dim" if i == L else f"hidden[{i - 1}]", 1)
                  for i, w in enumerate(sizes)]
        self.sizes = <Py_ssize_t*> malloc((L + 1) * sizeof(Py_ssize_t))
        self.w_off = <Py_ssize_t*> malloc(L * sizeof(Py_ssize_t))
        self.b_off = <Py_ssize_t*> malloc(L * sizeof(Py_ssize_t))
        self.h_off = <Py_ssize_t*> malloc(L * sizeof(Py_ssize_t))
        if not (self.sizes and self.w_off and self.b_off and self.h_off):
            raise MemoryError()
        self.n_layers = L
        for l in range(L + 1):
            self.sizes[l] = widths[l]
        for l in range(L):
            self.w_off[l] = off
            off = _checked_add(off, checked_mul(self.sizes[l], self.sizes[l + 1], name), name)
            self.b_off[l] = off
            off = _checked_add(off, self.sizes[l + 1], name)
            self.h_off[l] = hoff
            if l < L - 1:
                hoff = _checked_add(hoff, self.sizes[l + 1], name)
        self.in_dim = self.sizes[0]
        self.out_dim = self.sizes[L]
        self.n_params = off
        self.sum_hidden = hoff

    def __dealloc__(self):
        free(self.sizes)
        free(self.w_off)
        free(self.b_off)
        free(self.h_off)

    cdef void affine(self, const double* theta, Py_ssize_t l, const double* inp,
                     Py_ssize_t n, double* outp, bint blas) noexcept nogil:
        """outp (n, out) ← inp (n, in) @ W_l + b_l; blas=False row by row (gemm_acc)."""
        cdef Py_ssize_t i, k, nout = self.sizes[l + 1]
        cdef const double* b = theta + self.b_off[l]
        for i in range(n):
            for k in range(nout):
                outp[i * nout + k] = b[k]
        gemm_acc(inp, theta + self.w_off[l], n, self.sizes[l], nout, outp, blas)

    cdef void forward(self, const double* theta, const double* x, Py_ssize_t n,
                      double* hid, double* z, bint blas=True) noexcept nogil:
        """hid (n * sum_hidden) ← hidden activations, z (n, out_dim) ← outputs."""
        cdef Py_ssize_t l, i, L = self.n_layers
        cdef const double* inp = x
        cdef double* outp
        for l in range(L):
            outp = z if l == L - 1 else hid + n * self.h_off[l]
            self.affine(theta, l, inp, n, outp, blas)
            if l < L - 1:
                for i in range(n * self.sizes[l + 1]):
                    outp[i] = fast_tanh(outp[i])
            inp = outp

    cdef void forward_batch(self, const double* theta, const double* x, Py_ssize_t n,
                            double* hid, double* z):
        """forward for the batched entry points: the same, with numpy's SIMD tanh
        on each whole hidden layer (several times faster than a scalar tanh); the
        GIL is released around the matrix products."""
        cdef Py_ssize_t l, L = self.n_layers, size
        cdef const double* inp = x
        cdef double* outp
        for l in range(L):
            outp = z if l == L - 1 else hid + n * self.h_off[l]
            with nogil:
                self.affine(theta, l, inp, n, outp, True)
            size = n * self.sizes[l + 1]
            if l < L - 1 and size > 0:
                block = np.asarray(<double[:size]> outp)
                np.tanh(block, out=block)
            inp = outp

    cdef bint backward(self, const double* theta, const double* x, Py_ssize_t n,
                       const double* hid, const double* dz, double* scratch,
                       double* grad, Py_ssize_t ld, int num_threads=1) noexcept nogil:
        """Vector-Jacobian product for the output cotangents dz (n, out_dim).

        ld == 0: grad (n_params,) += Σ_i J_iᵀ dz_i.  ld > 0: row i of grad (stride ld)
        is set to J_iᵀ dz_i in the network's columns, the per-sample gradient,
        the rows split over num_threads threads; returns False unless every row is
        bounded, so surely finite (see _score_row); True for ld == 0.
        scratch: n sum_hidden doubles (δ of every hidden layer, laid out like hid).
        """
        cdef Py_ssize_t l, i, k, nin, nout, unbounded = 0
        cdef int threads
        cdef const double* cur = dz
        cdef const double* inp
        cdef double* nxt
        cdef double* gb
        for l in range(self.n_layers - 1, -1, -1):
            nin = self.sizes[l]
            nout = self.sizes[l + 1]
            inp = x if l == 0 else hid + n * self.h_off[l - 1]
            if ld == 0:
                gemm_tn_acc(inp, cur, n, nin, nout, grad + self.w_off[l])
                gb = grad + self.b_off[l]
                for i in range(n):
                    for k in range(nout):
                        gb[k] += cur[i * nout + k]
            if l > 0:
                # δ_{l-1} = (δ_l W_lᵀ) ⊙ (1 − h²)
                nxt = scratch + n * self.h_off[l - 1]
                gemm_nt(cur, theta + self.w_off[l], n, nin, nout, nxt)
                for i in range(n * nin):
                    nxt[i] *= 1.0 - inp[i] * inp[i]
                cur = nxt
        if ld > 0:
            # Writing the (n, ld) rows, far larger than the cache, is most of the
            # cost: each thread streams through its own contiguous block of rows
            # (and takes the page faults of a fresh matrix in parallel).
            threads = num_threads   # a plain local: prange cannot name an optional argument
            for i in prange(n, num_threads=threads, schedule="static"):
                unbounded += not self._score_row(x, n, hid, dz, scratch, i, grad + i * ld)
        return unbounded == 0

    cdef bint _score_row(self, const double* x, Py_ssize_t n, const double* hid,
                         const double* dz, const double* delta, Py_ssize_t i,
                         double* g) noexcept nogil:
        """g ← [x_i ⊗ δ0_i, δ0_i, h1_i ⊗ δ1_i, δ1_i, ...], row i's score.

        Returns True when Σ|δ| and Σ|x| Σ|δ| of every layer are finite, which bounds
        each value written: the row is then finite, found from O(in + out) sums per
        layer instead of a pass over its in·out values (False: the caller checks)."""
        cdef Py_ssize_t l, j, k, nin, nout, L = self.n_layers
        cdef const double* xi
        cdef const double* di
        cdef double xj, sx, sd
        cdef bint bounded = True
        for l in range(L):
            nin = self.sizes[l]
            nout = self.sizes[l + 1]
            xi = (x if l == 0 else hid + n * self.h_off[l - 1]) + i * nin
            di = (dz if l == L - 1 else delta + n * self.h_off[l]) + i * nout
            sx = 0.0
            sd = 0.0
            for j in range(nin):
                sx += fabs(xi[j])
            for k in range(nout):
                sd += fabs(di[k])
            # NaN fails both comparisons
            bounded = bounded and sd <= DBL_MAX and sx * sd <= DBL_MAX
            for j in range(nin):
                xj = xi[j]
                for k in range(nout):
                    g[k] = xj * di[k]
                g += nout
            for k in range(nout):
                g[k] = di[k]
            g += nout
        return bounded

    cdef void jvp(self, const double* theta, const double* v, const double* x,
                  Py_ssize_t n, const double* hid, double* scratch,
                  double* tz) noexcept nogil:
        """Jacobian-vector product: tz (n, out_dim) ← J_i v, the directional
        derivative of the outputs along v (forward mode; hid from forward).
        scratch: n sum_hidden doubles."""
        cdef Py_ssize_t l, i, k, nin, nout, L = self.n_layers
        cdef const double* inp = x
        cdef const double* tin = NULL
        cdef const double* b
        cdef const double* h
        cdef double* tout
        for l in range(L):
            nin = self.sizes[l]
            nout = self.sizes[l + 1]
            tout = tz if l == L - 1 else scratch + n * self.h_off[l]
            # t_{l+1} = h_l V_l + c_l + t_l W_l, then through tanh: ⊙ (1 − h_{l+1}²)
            b = v + self.b_off[l]
            for i in range(n):
                for k in range(nout):
                    tout[i * nout + k] = b[k]
            gemm_acc(inp, v + self.w_off[l], n, nin, nout, tout)
            if tin != NULL:
                gemm_acc(tin, theta + self.w_off[l], n, nin, nout, tout)
            if l < L - 1:
                h = hid + n * self.h_off[l]
                for i in range(n * nout):
                    tout[i] *= 1.0 - h[i] * h[i]
                inp = h
            tin = tout

    # Python entry points for value functions ------------------------------

    cdef int check(self, const double[::1] theta, const double[:, ::1] obs, str name) except -1:
        """theta of n_params and obs of in_dim columns, else ValueError."""
        if theta.shape[0] != self.n_params:
            raise ValueError(f"{name}: expected length {self.n_params} (n_params), "
                             f"got {theta.shape[0]}")
        if obs.shape[1] != self.in_dim:
            raise ValueError(f"obs: expected shape (n, {self.in_dim}), "
                             f"got ({obs.shape[0]}, {obs.shape[1]})")
        return 0

    def predict(self, const double[::1] theta, const double[:, ::1] obs,
                double[:, ::1] z):
        """z (n, out_dim) ← network outputs."""
        cdef Py_ssize_t n = obs.shape[0]
        cdef double* hid = NULL
        self.check(theta, obs, "theta")
        check_shape("z", z.shape[0], z.shape[1], n, self.out_dim)
        if n == 0:
            return
        try:
            hid = alloc_doubles(n * self.sum_hidden)
            self.forward_batch(&theta[0], &obs[0, 0], n, hid, &z[0, 0])
        finally:
            free(hid)

    def squared_error_grad(self, const double[::1] theta, const double[:, ::1] obs,
                           const double[::1] targets, double[::1] grad, num_threads=1):
        """Mean of ½ (z_i − y_i)² over rows (out_dim 1); grad (n_params,) ← its gradient.

        The rows are summed in blocks fixed by n alone (_loss_rows), each on its own,
        the sums added in block order; num_threads threads share the blocks, so the
        loss and gradient are the same bit for bit for any count."""
        cdef Py_ssize_t n = obs.shape[0]
        cdef int threads = as_threads(num_threads)
        cdef double loss
        cdef _LossWork work
        self.check_loss(theta, obs, "theta")
        check_len("targets", targets.shape[0], n)
        check_len("grad", grad.shape[0], self.n_params)
        try:
            self.alloc_loss_work(&work, n)
            with nogil:
                loss = self.squared_error(&theta[0], &obs[0, 0], &targets[0], n, &work,
                                          &grad[0], threads)
        finally:
            free_loss_work(&work)
        return loss

    def fit_minibatches(self, double[::1] theta, const double[:, ::1] obs,
                        const double[::1] targets, const Py_ssize_t[:, ::1] order,
                        Py_ssize_t size, double[::1] m, double[::1] v, long t,
                        double alpha, double beta1, double beta2, double eps,
                        num_threads=1):
        """Adam descent of the squared error, one step per minibatch: each row of
        order (an epoch's row indices, each in [0, n)) is cut into minibatches of
        `size` rows, the last shorter; theta, m and v are updated in place, and the
        step count after is returned. The steps of squared_error_grad then
        adam_step on each minibatch, without a Python call between them."""
        cdef Py_ssize_t n = obs.shape[0], D = self.in_dim, P = self.n_params
        cdef Py_ssize_t epochs = order.shape[0], L = order.shape[1], e, start, nb, i, j
        cdef const Py_ssize_t* rows
        cdef int threads = as_threads(num_threads)
        cdef _LossWork work
        cdef double* x = NULL
        cdef double* y = NULL
        cdef double* grad = NULL
        self.check_loss(theta, obs, "theta")
        check_len("targets", targets.shape[0], n)
        check_len("m", m.shape[0], P)
        check_len("v", v.shape[0], P)
        if size < 1:
            raise ValueError(f"size: expected a positive minibatch size, got {size}")
        for e in range(epochs):
            for i in range(L):
                if not 0 <= order[e, i] < n:
                    raise ValueError(f"order: expected row indices in [0, {n}), "
                                     f"got {order[e, i]}")
        if epochs == 0 or L == 0:
            return t
        nb = min(size, L)
        try:
            self.alloc_loss_work(&work, nb)
            x = alloc_doubles(nb * D)
            y = alloc_doubles(nb)
            grad = alloc_doubles(P)
            with nogil:
                for e in range(epochs):
                    start = 0
                    while start < L:   # (a range with a variable step is a Python loop)
                        nb = min(L, start + size) - start
                        rows = &order[e, start]
                        for i in range(nb):
                            y[i] = targets[rows[i]]
                            for j in range(D):
                                x[i * D + j] = obs[rows[i], j]
                        self.squared_error(&theta[0], x, y, nb, &work, grad, threads)
                        for i in range(P):
                            grad[i] = -grad[i]   # Adam ascends: descend the loss
                        t += 1
                        adam_ascend(&theta[0], grad, &m[0], &v[0], P, t, alpha, beta1,
                                    beta2, eps, &theta[0])
                        start += size
        finally:
            free_loss_work(&work)
            free(x)
            free(y)
            free(grad)
        return t

    cdef int check_loss(self, const double[::1] theta, const double[:, ::1] obs,
                        str name) except -1:
        """check, for a scalar output and at least one row."""
        self.check(theta, obs, name)
        if self.out_dim != 1:
            raise ValueError(f"squared_error_grad: expected a scalar output, out_dim is {self.out_dim}")
        if obs.shape[0] == 0:
            raise ValueError("obs: expected at least one observation, got 0")
        return 0

    cdef int alloc_loss_work(self, _LossWork* work, Py_ssize_t n) except -1:
        """The scratch of squared_error for up to n rows (freed by free_loss_work)."""
        # as many block sums as any batch of up to n rows has
        cdef Py_ssize_t blocks = min(<Py_ssize_t> LOSS_MAX_BLOCKS,
                                     (n + LOSS_BLOCK_ROWS - 1) // LOSS_BLOCK_ROWS)
        work.hid = work.z = work.scratch = work.sums = work.losses = NULL
        work.hid = alloc_doubles(n * self.sum_hidden)
        work.z = alloc_doubles(n)
        work.scratch = alloc_doubles(n * self.sum_hidden)
        work.sums = alloc_doubles(blocks * self.n_params)
        work.losses = alloc_doubles(blocks)
        return 0

    cdef double squared_error(self, const double* theta, const double* x, const double* y,
                              Py_ssize_t n, _LossWork* work, double* grad,
                              int num_threads) noexcept nogil:
        """The mean squared error of n rows, and grad ← its gradient, in fixed blocks."""
        cdef Py_ssize_t i, k, r0, nb, rows = _loss_rows(n), P = self.n_params
        cdef Py_ssize_t blocks = (n + rows - 1) // rows, D = self.in_dim, sh = self.sum_hidden
        cdef double loss
        for k in prange(blocks, num_threads=num_threads, schedule="static"):
            r0 = k * rows
            nb = min(n, r0 + rows) - r0
            self._squared_error_block(theta, x + r0 * D, y + r0, nb, n, work.hid + r0 * sh,
                                      work.z + r0, work.scratch + r0 * sh,
                                      work.sums + k * P, work.losses + k)
        for i in range(P):
            grad[i] = work.sums[i]
        loss = work.losses[0]
        for k in range(1, blocks):
            loss += work.losses[k]
            for i in range(P):
                grad[i] += work.sums[k * P + i]
        return loss / n

    cdef void _squared_error_block(self, const double* theta, const double* x,
                                   const double* y, Py_ssize_t nb, Py_ssize_t n, double* hid,
                                   double* z, double* scratch, double* grad,
                                   double* loss) noexcept nogil:
        """One block of squared_error_grad: grad ← its rows' share of the gradient
        of the mean over all n rows, loss ← Σ ½ (z_i − y_i)² over its rows."""
        cdef Py_ssize_t i
        cdef double r, total = 0.0
        self.forward(theta, x, nb, hid, z, True)
        for i in range(nb):
            r = z[i] - y[i]
            total += 0.5 * r * r
            z[i] = r / n
        for i in range(self.n_params):
            grad[i] = 0.0
        self.backward(theta, x, nb, hid, z, scratch, grad, 0)
        loss[0] = total


cdef void free_loss_work(_LossWork* work) noexcept:
    free(work.hid)
    free(work.z)
    free(work.scratch)
    free(work.sums)
    free(work.losses)
    work.hid = work.z = work.scratch = work.sums = work.losses = NULL


cdef void adam_ascend(const double* theta, const double* grad, double* m, double* v,
                      Py_ssize_t n, long t, double alpha, double beta1, double beta2,
                      double eps, double* out) noexcept nogil:
    """Adam's step t of ascent on grad (out may be theta): the operations of
    pgfast.Adam in their order, one pass instead of a temporary per operation."""
    cdef Py_ssize_t i
    cdef double c1 = 1.0 - pow(beta1, <double> t), c2 = 1.0 - pow(beta2, <double> t)
    cdef double g
    for i in range(n):
        g = grad[i]
        m[i] = m[i] * beta1 + (1.0 - beta1) * g
        v[i] = v[i] * beta2 + (1.0 - beta2) * (g * g)
        out[i] = theta[i] + (alpha * (m[i] / c1)) / (sqrt(v[i] / c2) + eps)


def adam_step(const double[::1] theta, const double[::1] grad, double[::1] m,
              double[::1] v, long t, double alpha, double beta1, double beta2, double eps,
              double[::1] out):
    """out ← Adam's step t of ascent from theta along grad; m and v in place
    (pgfast.Adam's arithmetic; the caller checks the shapes)."""
    cdef Py_ssize_t n = theta.shape[0]
    for name, arr in (("grad", grad), ("m", m), ("v", v), ("out", out)):
        check_len(name, arr.shape[0], n)
    if n:
        with nogil:
            adam_ascend(&theta[0], &grad[0], &m[0], &v[0], n, t, alpha, beta1, beta2, eps,
                        &out[0])


# The value loss's row blocks: at least LOSS_BLOCK_ROWS rows (half a 128-row minibatch,
# a thread's share worth its start), at most LOSS_MAX_BLOCKS (bounding the sums' memory).
cdef enum:
    LOSS_BLOCK_ROWS = 64
    LOSS_MAX_BLOCKS = 64


cdef inline Py_ssize_t _loss_rows(Py_ssize_t n) noexcept nogil:
    return max(<Py_ssize_t> LOSS_BLOCK_ROWS, (n + LOSS_MAX_BLOCKS - 1) // LOSS_MAX_BLOCKS)


cdef inline Py_ssize_t _checked_add(Py_ssize_t a, Py_ssize_t b, str name) except? -1:
    if a > MAX_ELEMENTS - b:
        raise ValueError(f"{name}: the network needs more than {MAX_ELEMENTS} parameters")
    return a + b
