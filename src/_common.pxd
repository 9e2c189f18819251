# Helpers every kernel module shares (src/_common.pyx): scratch memory that is
# 64-byte aligned and released on every path, the C bit generator of a numpy
# Generator taken through a checked capsule, and the bounds on sizes and thread
# counts that keep a bad argument a ValueError instead of a crash.
from numpy.random cimport bitgen_t

# Uninitialised memory for kernels' scratch, 64-byte aligned (2 MiB pages when
# large, on Linux); release it with free(). NULL when out of memory. For nogil
# callers (the rollout loop); entry points holding the GIL use alloc_doubles.
cdef void* scratch(size_t nbytes) noexcept nogil

# Scratch of n doubles (at least one) or MemoryError, also when n * 8 bytes
# overflows. Pair every call with free() in a finally clause:
#     p = q = NULL
#     try:
#         p = alloc_doubles(n); q = alloc_doubles(m)
#         ...
#     finally:
#         free(p); free(q)
cdef double* alloc_doubles(Py_ssize_t n) except NULL
# The same, zeroed (calloc: pages never touched cost nothing), not aligned.
cdef double* alloc_zeros(Py_ssize_t n) except NULL

# The bitgen_t* of a numpy.random.Generator, its capsule checked first; a
# TypeError naming `name` for anything else. The caller keeps rng alive and
# holds rng.bit_generator.lock while drawing.
cdef bitgen_t* bitgen_of(object rng, str name=*) except NULL

# A count or size given from Python as an int in [minimum, maximum]: ValueError
# naming `name` otherwise (never OverflowError, whatever the int's size), and a
# TypeError for a non-integer.
cdef Py_ssize_t as_size(object value, str name, Py_ssize_t minimum=*,
                        Py_ssize_t maximum=*) except? -1

# The most elements one array of a kernel may hold: 2**48 doubles (2 PiB) is
# beyond any machine, and far below where Py_ssize_t arithmetic overflows.
cdef extern from *:
    """
    #define PGFAST_MAX_ELEMENTS ((Py_ssize_t) 1 << 48)
    #define PGFAST_MAX_THREADS 256
    """
    const Py_ssize_t MAX_ELEMENTS "PGFAST_MAX_ELEMENTS"
    # OpenMP teams larger than this are refused (and omp_get_thread_limit()).
    const int MAX_THREADS "PGFAST_MAX_THREADS"

# a * b, or a ValueError naming `name` when the product exceeds MAX_ELEMENTS
# (a, b >= 0).
cdef Py_ssize_t checked_mul(Py_ssize_t a, Py_ssize_t b, str name) except? -1

# num_threads as an int in [1, min(MAX_THREADS, omp_get_thread_limit())]: the OpenMP team size of a
# parallel loop. ValueError naming num_threads otherwise.
cdef int as_threads(object num_threads) except -1

# Shape checks of the kernels' Python entry points (once per call): ValueError
# naming the argument. check_len for 1-D arrays, check_shape for 2-D.
cdef int check_len(str name, Py_ssize_t got, Py_ssize_t want) except -1
cdef int check_shape(str name, Py_ssize_t rows, Py_ssize_t cols,
                     Py_ssize_t want_rows, Py_ssize_t want_cols) except -1
