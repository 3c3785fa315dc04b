"""Training OSMN: the objective, the data pipelines and the training loop."""
