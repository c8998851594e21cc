"""gpu_consumer stage."""
