"""Features, online side: the stream sink, partials, plans, engine, backfill."""
