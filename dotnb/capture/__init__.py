"""Kernel-side capture: the %%track magic, file access, params, metrics, environment."""
