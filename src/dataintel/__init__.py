"""dataintel: the data backbone of an e-commerce cart-recovery platform."""

__version__ = "0.1.0"
