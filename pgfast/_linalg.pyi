# Stub for the compiled module src/_linalg.pyx (arrays are checked by pgfast.gradients).
from numpy.typing import NDArray

def pinv_solve(a: NDArray, y: NDArray, rcond: float, out: NDArray, route: NDArray) -> int: ...
