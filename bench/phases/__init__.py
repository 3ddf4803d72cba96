"""The bench's phases, each a function of the running system that returns its figures."""
