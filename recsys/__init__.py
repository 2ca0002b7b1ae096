"""The `recsys` command line: simulate, train, build-index, evaluate, serve."""
