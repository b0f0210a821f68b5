"""Real-time features: tiles, the processor sink, serving, offline computation."""
