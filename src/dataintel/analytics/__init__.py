"""The analytics plane: overview, funnels, attribution, model performance (docs/analytics.md)."""
