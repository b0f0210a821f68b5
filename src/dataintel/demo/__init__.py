"""The demo: the real shop events, and the platform's two neighbours simulated on them.

Only ``dataintel serve --demo`` / ``dataintel demo`` use this package; it talks to the running
service through its public HTTP API, as the real neighbours would."""
