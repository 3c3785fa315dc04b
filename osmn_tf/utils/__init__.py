"""Shared plumbing: atomic output folders, errors, optional extras, precision policies."""
