"""Test-wide settings (the library itself sets no global state)."""

import torch

# The tests use tiny tensors: a second OpenMP thread only adds synchronisation, and on a
# loaded 2-core machine each parallel op can wait a whole scheduler slice for it (measured
# 10-60x slower with 2 threads when another process holds a core).
torch.set_num_threads(1)
