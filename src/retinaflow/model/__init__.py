"""RetinaNet architectures, checkpoints and the truncated forward that is exported."""
