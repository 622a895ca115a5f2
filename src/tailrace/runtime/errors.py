"""The service's refusals, as the API reports them (InvalidRequestException, PipelineDeletedException)."""

from __future__ import annotations

from tailrace.errors import TailraceError
from tailrace.state import PipelineNotFound


class InvalidRequest(TailraceError):
    """The request cannot be carried out in the pipeline's current state (InvalidRequestException)."""


class PipelineDeleted(PipelineNotFound):
    """The pipeline existed and was deleted (PipelineDeletedException)."""

    def __init__(self, pipeline_id: str) -> None:
        super().__init__(pipeline_id)
        self.message = f"pipeline {pipeline_id!r} was deleted"
        self.args = (self.message,)


class LimitExceeded(InvalidRequest):
    """A per-owner or definition limit of this server ([limits] in tailrace.toml) would be passed;
    AWS reports these as InvalidRequestException too."""
