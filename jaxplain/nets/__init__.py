"""Flax networks trained by explainers: the VAE of re-label distillation and its students."""
