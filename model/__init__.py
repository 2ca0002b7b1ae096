"""Offline side: data (simulate, load, validate), towers and heads, training, evaluation."""
