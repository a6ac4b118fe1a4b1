"""Notebooks: JupyterLab instances with leases, images, flavors, storage and tags (ModelArts DevEnviron)."""
