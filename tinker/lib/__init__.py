"""Library helpers that user code imports by their official module paths."""
