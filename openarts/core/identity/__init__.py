"""Identity: domains (accounts), projects, users, access keys and tokens."""
