"""Real-time services: ``/v1/{project_id}/services`` and inference calls (reference sections 4 and 5)."""
