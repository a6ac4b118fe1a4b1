"""Training jobs: their records, their rules, and the controller that runs them as real processes."""
