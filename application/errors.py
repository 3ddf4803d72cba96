"""Errors of the application layer: what a use case reports about the store's tasks, as opposed
to a business rule the domain enforces (domain.errors). The API turns each into one problem."""

from __future__ import annotations


class TaskNotFound(Exception):
    # A str for an id that is well-formed but beyond any integer the store keeps.
    def __init__(self, task_id: int | str) -> None:
        super().__init__(f"task {task_id} does not exist")
        self.task_id = task_id


class ConcurrentModification(Exception):
    """The task changed in storage since it was read; reload and apply the move again."""
