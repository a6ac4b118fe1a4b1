"""Training: algorithms, experiments, jobs, tags."""
