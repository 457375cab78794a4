"""The training engine: schedules, checkpoints, devices, logs and the training loop."""
