"""The stack's own ceilings, measured in the same run as taskman: pgbench and bare Celery."""
