"""Training pieces around ``fit``: checkpoints, evaluation, callbacks."""
