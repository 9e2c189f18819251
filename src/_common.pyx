# cython: language_level=3
"""Helpers every kernel module shares (declared in ``_common.pxd``).

Scratch memory: 64-byte aligned, released by the caller in a ``finally`` clause
so that no exit path leaks it. Random numbers: the ``bitgen_t`` of the caller's
numpy Generator, its capsule checked before it is trusted. Arguments that reach
C sizes and OpenMP teams: bounded here, so that a huge or overflowing value is a
``ValueError`` naming the argument rather than a crash.

No Python wrapper of its own: every kernel module cimports it.
"""
import numbers

from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from libc.stdlib cimport calloc


# Scratch starts on a 64-byte boundary, so that rows whose length is a multiple
# of 8 doubles never straddle cache lines (a 64-byte store that splits a line
# stalls the next load of it, and a layer's update loads what it just stored).
# Large scratch is fresh memory from the OS on every call, and faulting it in
# 4 KiB pages costs as much as the arithmetic on it; in 2 MiB pages (as numpy
# asks for its own large arrays) it costs a few per cent.
cdef extern from *:
    """
    #include <stdlib.h>
    #if defined(__linux__)
    #include <sys/mman.h>
    #endif
    static void *pgfast_scratch(size_t bytes) {
        void *p = NULL;
        size_t align = 64;
    #if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (bytes >= ((size_t) 4 << 20))
            align = (size_t) 2 << 20;
    #endif
        if (posix_memalign(&p, align, bytes ? bytes : 1) != 0)
            return NULL;
    #if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (align > 64)
            madvise(p, bytes, MADV_HUGEPAGE);
    #endif
        return p;
    }
    #ifdef _OPENMP
    #include <omp.h>
    static int pgfast_thread_limit(void) { return omp_get_thread_limit(); }
    #else
    static int pgfast_thread_limit(void) { return PGFAST_MAX_THREADS; }
    #endif
    """
    void* _scratch "pgfast_scratch"(size_t nbytes) noexcept nogil
    int _thread_limit "pgfast_thread_limit"() noexcept nogil


cdef void* scratch(size_t nbytes) noexcept nogil:
    return _scratch(nbytes)


cdef double* alloc_doubles(Py_ssize_t n) except NULL:
    cdef double* p = NULL
    if n <= MAX_ELEMENTS:
        p = <double*> _scratch((n if n > 0 else 1) * sizeof(double))
    if p == NULL:
        raise MemoryError(f"could not allocate {n} doubles of kernel scratch")
    return p


cdef double* alloc_zeros(Py_ssize_t n) except NULL:
    cdef double* p = NULL
    if n <= MAX_ELEMENTS:
        p = <double*> calloc(n if n > 0 else 1, sizeof(double))
    if p == NULL:
        raise MemoryError(f"could not allocate {n} doubles of kernel scratch")
    return p


cdef bitgen_t* bitgen_of(object rng, str name="rng") except NULL:
    capsule = getattr(getattr(rng, "bit_generator", None), "capsule", None)
    if capsule is None or not PyCapsule_IsValid(capsule, "BitGenerator"):
        raise TypeError(f"{name}: expected a numpy.random.Generator, got {type(rng).__name__}")
    return <bitgen_t*> PyCapsule_GetPointer(capsule, "BitGenerator")


cdef Py_ssize_t as_size(object value, str name, Py_ssize_t minimum=0,
                        Py_ssize_t maximum=MAX_ELEMENTS) except? -1:
    if isinstance(value, (bool, float)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    value = int(value)   # a Python int of any size: compared before any C conversion
    if not minimum <= value <= maximum:
        raise ValueError(f"{name}: expected an int in [{minimum}, {maximum}], got {value}")
    return value


cdef Py_ssize_t checked_mul(Py_ssize_t a, Py_ssize_t b, str name) except? -1:
    if b != 0 and a > MAX_ELEMENTS // b:
        raise ValueError(f"{name}: {a} x {b} elements is more than any machine can hold "
                         f"(at most {MAX_ELEMENTS})")
    return a * b


cdef int as_threads(object num_threads) except -1:
    cdef int limit = _thread_limit()
    if limit < 1 or limit > MAX_THREADS:
        limit = MAX_THREADS
    return <int> as_size(num_threads, "num_threads", 1, limit)


cdef int check_len(str name, Py_ssize_t got, Py_ssize_t want) except -1:
    if got != want:
        raise ValueError(f"{name}: expected shape ({want},), got ({got},)")
    return 0


cdef int check_shape(str name, Py_ssize_t rows, Py_ssize_t cols,
                     Py_ssize_t want_rows, Py_ssize_t want_cols) except -1:
    if rows != want_rows or cols != want_cols:
        raise ValueError(f"{name}: expected shape ({want_rows}, {want_cols}), "
                         f"got ({rows}, {cols})")
    return 0
