"""``compare``: paired, repeated evaluation of selection methods and keep rates on a user's own data, with a recommendation."""
from .compare import DEFAULT_KEEPS, DEFAULT_METHODS, Comparison, compare

__all__ = ["Comparison", "DEFAULT_KEEPS", "DEFAULT_METHODS", "compare"]
