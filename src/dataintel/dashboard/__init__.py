"""The web dashboard: static pages served by the service, reading the public API."""
