"""Workspaces and their quotas; the access rules every workspace-scoped family applies."""
