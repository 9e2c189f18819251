# Stub for the compiled module src/_scores.pyx (arrays are checked by pgfast.gradients).
from numpy.typing import NDArray

def weighted_score_sums(scores: NDArray, togo: NDArray, powers: NDArray, terminated: NDArray,
                        truncated: NDArray, whole_return: bool, per_trajectory: NDArray,
                        total: NDArray) -> int: ...
def baseline_sums(scores: NDArray, togo: NDArray, powers: NDArray, terminated: NDArray,
                  truncated: NDArray, weighted: NDArray, plain: NDArray, weighted_total: NDArray,
                  plain_total: NDArray, ratio_sum: NDArray, ratio_count: NDArray) -> int: ...
