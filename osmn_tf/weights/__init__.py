"""Weights in and out: the original's TF1 checkpoints, ImageNet initialisation, `.keras` files."""
