"""Model management: ``/v1/{project_id}/models`` (reference models-services.md section 2)."""
