# The tanh MLP every policy and value function is built on (src/_net.pyx):
# forward, reverse (vector-Jacobian) and forward-mode (Jacobian-vector) passes
# over row-major batches. Python wrapper: pgfast/policies.py (value functions use
# Net directly, policies through the heads of _softmax.pyx and _gaussian.pyx).

# Scratch of Net.squared_error (alloc_loss_work, free_loss_work).
ctypedef struct _LossWork:
    double* hid
    double* z
    double* scratch
    double* sums
    double* losses


cdef class Net:
    cdef readonly Py_ssize_t n_layers, in_dim, out_dim, n_params, sum_hidden
    cdef Py_ssize_t* sizes
    cdef Py_ssize_t* w_off
    cdef Py_ssize_t* b_off
    cdef Py_ssize_t* h_off

    cdef void affine(self, const double* theta, Py_ssize_t l, const double* inp,
                     Py_ssize_t n, double* outp, bint blas) noexcept nogil
    cdef void forward(self, const double* theta, const double* x, Py_ssize_t n,
                      double* hid, double* z, bint blas=*) noexcept nogil
    cdef void forward_batch(self, const double* theta, const double* x, Py_ssize_t n,
                            double* hid, double* z)
    cdef bint backward(self, const double* theta, const double* x, Py_ssize_t n,
                       const double* hid, const double* dz, double* scratch,
                       double* grad, Py_ssize_t ld, int num_threads=*) noexcept nogil
    cdef bint _score_row(self, const double* x, Py_ssize_t n, const double* hid,
                         const double* dz, const double* delta, Py_ssize_t i,
                         double* g) noexcept nogil
    cdef void _squared_error_block(self, const double* theta, const double* x,
                                   const double* y, Py_ssize_t nb, Py_ssize_t n, double* hid,
                                   double* z, double* scratch, double* grad,
                                   double* loss) noexcept nogil
    cdef void jvp(self, const double* theta, const double* v, const double* x,
                  Py_ssize_t n, const double* hid, double* scratch,
                  double* tz) noexcept nogil

    cdef int check_loss(self, const double[::1] theta, const double[:, ::1] obs,
                        str name) except -1
    cdef int alloc_loss_work(self, _LossWork* work, Py_ssize_t n) except -1
    cdef double squared_error(self, const double* theta, const double* x, const double* y,
                              Py_ssize_t n, _LossWork* work, double* grad,
                              int num_threads) noexcept nogil

    # theta of n_params and obs of in_dim columns, else a ValueError naming them.
    cdef int check(self, const double[::1] theta, const double[:, ::1] obs, str name) except -1
