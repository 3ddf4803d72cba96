"""`make bench`: taskman's throughput and latency, each against its stack's own ceiling."""
