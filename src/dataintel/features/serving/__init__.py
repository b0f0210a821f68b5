"""Features, serving side: vectors, derived values, definitions, the API."""
