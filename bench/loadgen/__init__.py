"""Load generators, each running in a process of its own, apart from the system under test."""
