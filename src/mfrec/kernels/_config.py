"""The one explicit floating-point flag set the kernels use.

No blanket ``fastmath=True``: ``nnan``/``ninf`` would let LLVM assume NaN and inf never occur and
silently hide diverging factors (umap removed fastmath for that reason). We only allow
re-association (so dot products and sums vectorise) and fused multiply-add contraction.
"""

FASTMATH = {"reassoc", "contract"}
