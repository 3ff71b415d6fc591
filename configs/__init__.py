"""Experiment configs (ml_collections files for `--config=configs/NAME.py`).

A config builds on another with a plain import (`from configs import lama_fourier`), which
works from the repository root, where the commands in the README run.
"""
