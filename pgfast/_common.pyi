# Stub for the compiled module src/_common.pyx: shared Cython helpers (cimported
# through src/_common.pxd), nothing public at the Python level.
