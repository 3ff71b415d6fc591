"""LaMa's training losses (official `saicinpainting/training/losses/` and `trainers/default.py`)."""
