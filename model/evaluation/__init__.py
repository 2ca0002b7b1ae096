"""Evaluation and reports: held-out metrics, baselines, the Bayes reference, the quality report."""
