"""Notebook images: the built-in catalogue (the server's own environment) and registered local Python
environments, as ModelArts' ``/v1/{project_id}/images`` API shows them."""
