"""Inputs: frames and videos, DAVIS / YouTube-VOS / YouTube-Objects layouts, masks, guides, synthetic data."""
