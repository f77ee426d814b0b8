"""The grid of runs: shards, leases, the process pool, a grid point's lifecycle, parent runs."""
