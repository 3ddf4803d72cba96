"""The broker adapter: Celery on Redis (or kombu's filesystem transport when embedded)."""

from adapters.broker.app import EXECUTE_TASK, QUEUE_NAMES, create_celery_app
from adapters.broker.queue import CeleryTaskQueue

__all__ = ["EXECUTE_TASK", "QUEUE_NAMES", "CeleryTaskQueue", "create_celery_app"]
