"""Model registry: versions, lineage, aliases."""
