"""Hyperparameter search ("autosearch"): real search algorithms proposing trials that run as real jobs."""
