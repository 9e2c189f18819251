"""BLAS threads during pgfast's kernel calls: one, so results never depend on them.

OpenBLAS splits a matrix product over its threads differently for different thread
counts, and the sums then round differently: an MLP's Fisher product computed with
two BLAS threads differs in the last bits from one computed with one. pgfast's
kernels parallelise over rows themselves (``num_threads``), so they run their
matrix products on one BLAS thread (threadpoolctl, restored after the call).
"""
from __future__ import annotations

import functools

_controller = None   # made on first use: inspecting the loaded libraries takes a few ms


def one_blas_thread():
    """A context in which every loaded BLAS library runs on one thread."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def blas_limited(always=False):
    """Decorate a network method: its call runs under :func:`one_blas_thread` when
    the network has hidden layers (matrix products), or `always`."""
    def decorate(method):
        @functools.wraps(method)
        def call(self, *args, **kwargs):
            if not (always or self.hidden):
                return method(self, *args, **kwargs)
            with one_blas_thread():
                return method(self, *args, **kwargs)
        return call
    return decorate
