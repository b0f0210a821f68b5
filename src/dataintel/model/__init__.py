"""Floor 1: the shared vocabulary (aggregations, windows, tiles, expressions, event fields,
the config snapshot). Imports nothing else of the project; every other floor may import it."""
