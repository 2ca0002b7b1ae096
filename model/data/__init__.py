"""Data sources and simulators: the dataset contract read and written, the simulated worlds, public data converters."""
