"""Workflows: DAGs of steps (training jobs, conditions, ...) run as executions by an event-driven engine."""
