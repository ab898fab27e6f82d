"""The one explicit floating-point flag set the kernels use.

No blanket ``fastmath=True``: ``nnan``/``ninf`` would let LLVM assume NaN and inf never occur and
silently hide diverging factors (umap removed fastmath for that reason). We only allow
re-association (so dot products and sums vectorise) and fused multiply-add contraction.

One rule comes with re-association: a loop never both stores into an array and re-associates a sum
(split it in two). LLVM guards such a loop with a runtime check that the arrays do not overlap within
a vector's reach and runs a scalar copy of the loop when they might; the copy adds in another order,
so the result would depend on where the arrays happen to lie in memory (an mf-genre retrain differed
in the last bit after other models had trained in the same process). tests/test_kernels_placement.py
places the scratch buffers next to the arrays a solve reads and demands the same bits.
"""

FASTMATH = {"reassoc", "contract"}
