"""Derived features: expressions over other feature values, evaluated at serving time."""
