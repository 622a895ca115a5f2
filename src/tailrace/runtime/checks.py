"""Checks of PutPipelineDefinition and CreatePipeline's arguments that are not the definition's
own validation: SnsAlarm topics the owner lacks (warnings), and pipeline tags."""

from __future__ import annotations

from collections.abc import Mapping

from tailrace.definition import PipelineDefinition, Problem
from tailrace.definition.problems import warning
from tailrace.runtime.errors import InvalidRequest
from tailrace.runtime.transitions import TopicCheck

MAX_TAGS = 10


def topic_warnings(check: TopicCheck | None, owner: str, definition: PipelineDefinition) -> list[Problem]:
    """A warning for each SnsAlarm whose literal topicArn names no topic of the owner (an
    expression is only known when the action fires, and is checked then)."""
    if check is None:
        return []
    out = []
    for obj in definition.objects:
        arn = obj.get("topicArn")
        if obj.type != "SnsAlarm" or not isinstance(arn, str) or "#{" in arn:
            continue
        try:
            problem = check(owner, arn)
        except Exception:  # the topics' database may be away: no warning rather than no save
            problem = None
        if problem is not None:
            out.append(
                warning(
                    obj.id,
                    "topicArn",
                    f"{problem}; the alarm will not be delivered until the topic exists",
                    line=obj.field_lines.get("topicArn", obj.line),
                )
            )
    return out


def checked_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    if tags is None:
        return {}
    pairs = dict(tags)
    if len(pairs) > MAX_TAGS:
        raise InvalidRequest(f"a pipeline has at most {MAX_TAGS} tags; found {len(pairs)}")
    for key, value in pairs.items():
        if not 1 <= len(key) <= 128 or len(value) > 256:
            raise InvalidRequest(f"tag {key!r}: keys are 1 to 128 characters and values at most 256")
    return pairs
