"""The analytics plane: funnels, and later overview, revenue, performance, reports."""
