"""Training: corpus preparation (chorales, prepare, shards) and the trainer."""
