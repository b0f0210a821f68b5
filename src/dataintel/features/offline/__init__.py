"""Features, offline side: values as of t by SQL, historical joins."""
