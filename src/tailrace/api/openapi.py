"""The OpenAPI 3.1 document served at /openapi.json.

The REST paths are described here by hand; the AWS JSON 1.1 endpoint's request and response
schemas are generated from botocore's service model, so they cannot drift from what the
endpoint checks.
"""

from __future__ import annotations

import functools
from typing import Any

from botocore.model import Shape

from tailrace import __version__
from tailrace.api import shapes
from tailrace.api.rest import PREFIX

ERROR = {"$ref": "#/components/schemas/Error"}


def _error_responses(*codes: int) -> dict[str, Any]:
    text = {
        400: "invalid request (InvalidRequestException, PipelineNotFoundException, ...)",
        403: "authentication failed (MissingAuthenticationTokenException, UnrecognizedClientException, "
        "InvalidSignatureException, IncompleteSignatureException)",
        404: "no such resource",
        413: "request body too large",
        500: "internal error (InternalServiceError)",
    }
    return {
        str(c): {"description": text[c], "content": {"application/json": {"schema": ERROR}}} for c in codes
    }


def _shape_schema(shape: Shape, refs: dict[str, Any]) -> dict[str, Any]:
    kind = shape.type_name
    if kind == "structure":
        name = shape.name
        if name not in refs:
            refs[name] = {}  # placeholder first: shapes may refer to themselves
            schema: dict[str, Any] = {
                "type": "object",
                "properties": {m: _shape_schema(s, refs) for m, s in shape.members.items()},
            }
            required = list(shape.metadata.get("required", ()))
            if required:
                schema["required"] = required
            refs[name] = schema
        return {"$ref": f"#/components/schemas/DataPipeline.{name}"}
    if kind == "list":
        out: dict[str, Any] = {"type": "array", "items": _shape_schema(shape.member, refs)}
        if "min" in shape.metadata:
            out["minItems"] = shape.metadata["min"]
        if "max" in shape.metadata:
            out["maxItems"] = shape.metadata["max"]
        return out
    if kind == "map":
        return {"type": "object", "additionalProperties": _shape_schema(shape.value, refs)}
    if kind == "string":
        out = {"type": "string"}
        if "min" in shape.metadata:
            out["minLength"] = shape.metadata["min"]
        if "max" in shape.metadata:
            out["maxLength"] = shape.metadata["max"]
        if shape.enum:
            out["enum"] = list(shape.enum)
        return out
    if kind == "timestamp":
        return {"type": "number", "description": "seconds since the epoch"}
    if kind == "boolean":
        return {"type": "boolean"}
    if kind in ("integer", "long"):
        return {"type": "integer"}
    return {"type": "number"}


def _aws_part(schemas: dict[str, Any]) -> dict[str, Any]:
    refs: dict[str, Any] = {}
    inputs, outputs = [], []
    for name in sorted(shapes.operation_names()):
        op = shapes.operation(name)
        if op.input_shape is not None:
            inputs.append(_shape_schema(op.input_shape, refs))
        if op.output_shape is not None:
            outputs.append(_shape_schema(op.output_shape, refs))
    for name, schema in refs.items():
        schemas[f"DataPipeline.{name}"] = schema
    return {
        "post": {
            "operationId": "awsDataPipeline",
            "summary": "AWS Data Pipeline API (JSON 1.1, API version 2012-10-29)",
            "description": "The operation is named by the X-Amz-Target header; the body is that "
            "operation's <Operation>Input shape and the answer its <Operation>Output shape. "
            "Point boto3 (`endpoint_url=`) or the AWS CLI (`--endpoint-url`) here.",
            "tags": ["aws"],
            "security": [{"sigv4": []}],
            "parameters": [
                {
                    "name": "X-Amz-Target",
                    "in": "header",
                    "required": True,
                    "schema": {
                        "type": "string",
                        "enum": [f"DataPipeline.{n}" for n in sorted(shapes.operation_names())],
                    },
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"application/x-amz-json-1.1": {"schema": {"anyOf": inputs}}},
            },
            "responses": {
                "200": {
                    "description": "the operation's output",
                    "content": {
                        "application/x-amz-json-1.1": {"schema": {"anyOf": [*outputs, {"type": "object"}]}}
                    },
                },
                **_error_responses(400, 403, 413, 500),
            },
        }
    }


def _get(op_id: str, summary: str, response: dict[str, Any], params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "operationId": op_id,
            "summary": summary,
            "tags": ["console"],
            "security": [{"sigv4": []}, {"basic": []}],
            "parameters": params,
            "responses": {"200": response, **_error_responses(400, 403, 404, 500)},
        }
    }


def _preview_post() -> dict[str, Any]:
    body = {
        "type": "object",
        "description": "ActivatePipeline's input without pipelineId (it is in the path)",
        "properties": {
            "startTimestamp": {
                "type": ["number", "string"],
                "description": "seconds since the epoch, or YYYY-MM-DDTHH:MM:SS (UTC): the first period starts here",
            },
            "parameterValues": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/DataPipeline.ParameterValue"},
            },
        },
    }
    return {
        "post": {
            "operationId": "previewActivation",
            "summary": "the periods and instances activating the pipeline now would create at once "
            "(the backfill from a past start); changes nothing",
            "tags": ["console"],
            "security": [{"sigv4": []}, {"basic": []}],
            "parameters": [_path("pipeline_id"), _query("limit", "integer", "periods listed (default 20)")],
            "requestBody": {"required": False, "content": {"application/json": {"schema": body}}},
            "responses": {"200": _json("ActivationPreview"), **_error_responses(400, 403, 404, 500)},
        }
    }


def _broadcast_post() -> dict[str, Any]:
    text = {"type": "string", "minLength": 1, "maxLength": 1000, "description": "shown as text"}
    body = {"type": "object", "required": ["text"], "properties": {"text": text}}
    answer = {"type": "object", "properties": {"text": text, "owner": _OPT_STR}}
    return {
        "post": {
            "operationId": "broadcast",
            "summary": "a message to every open console page of the caller's owner (and operators')",
            "tags": ["console"],
            "security": [{"sigv4": []}, {"basic": []}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": answer}}},
                **_error_responses(400, 403, 500),
            },
        }
    }


def _json(ref: str) -> dict[str, Any]:
    return {
        "description": "OK",
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, kind: str, description: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    if kind == "integer":
        schema["minimum"] = 0
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_STR = {"type": "string"}
_OPT_STR = {"type": ["string", "null"]}
_DP = {"type": ["string", "null"], "description": "UTC, YYYY-MM-DDTHH:MM:SS"}


def _rest_schemas() -> dict[str, Any]:
    cell = {
        "type": "object",
        "properties": {
            "id": _STR,
            "componentId": _STR,
            "status": _STR,
            "attemptCount": {"type": "integer"},
            "headAttempt": _OPT_STR,
            "actualStartTime": _DP,
            "actualEndTime": _DP,
            "errorMessage": _OPT_STR,
        },
        "required": ["id", "componentId", "status"],
    }
    return {
        "Error": {
            "type": "object",
            "properties": {
                "__type": {"type": "string", "description": "<namespace>#<ErrorCode>"},
                "message": {"type": "string"},
            },
            "required": ["__type", "message"],
        },
        "Pipeline": {
            "type": "object",
            "properties": {
                "id": _STR,
                "name": _STR,
                "uniqueId": _STR,
                "description": _OPT_STR,
                "owner": _STR,
                "state": _STR,
                "healthStatus": _OPT_STR,
                "createdAt": _DP,
                "activatedAt": _DP,
                "latestRunTime": _DP,
                "nextRunTime": _DP,
                "finishedAt": _DP,
                "latestVersion": {"type": ["integer", "null"]},
                "activeVersion": {"type": ["integer", "null"]},
                "tags": {"type": "object", "additionalProperties": _STR},
                "instanceCounts": {"type": "object", "additionalProperties": {"type": "integer"}},
            },
            "required": ["id", "name", "state"],
        },
        "PipelinePage": {
            "type": "object",
            "properties": {
                "pipelines": {"type": "array", "items": {"$ref": "#/components/schemas/Pipeline"}},
                "next": _OPT_STR,
            },
        },
        "Graph": {
            "type": "object",
            "properties": {
                "nodes": {"type": "array", "items": {"type": "object"}},
                "edges": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"from": _STR, "to": _STR, "field": _STR},
                    },
                },
            },
        },
        "InstanceCell": cell,
        "Grid": {
            "type": "object",
            "properties": {
                "components": {"type": "array", "items": {"type": "object"}},
                "periods": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "scheduledStartTime": _STR,
                            "scheduledEndTime": _STR,
                            "cells": {
                                "type": "object",
                                "additionalProperties": {"$ref": "#/components/schemas/InstanceCell"},
                            },
                        },
                    },
                },
                "hasMore": {"type": "boolean"},
                "nextTo": _DP,
            },
        },
        "Instance": {
            "type": "object",
            "properties": {"attempts": {"type": "array", "items": {"type": "object"}}},
        },
        "RunPage": {
            "type": "object",
            "properties": {
                "runs": {
                    "type": "array",
                    "items": {"type": "object", "additionalProperties": _STR},
                    "description": "one per instance: @id, name and every field DescribeObjects shows",
                },
                "truncated": {"type": "boolean", "description": "more instances matched than `limit`"},
            },
            "required": ["runs", "truncated"],
        },
        "ActivationPreview": {
            "type": "object",
            "properties": {
                "pipelineId": _STR,
                "periods": {"type": "integer", "description": "periods the activation would create at once"},
                "instances": {"type": "integer", "description": "instances of those periods"},
                "complete": {
                    "type": "boolean",
                    "description": "false when there are more periods than were counted (100,000)",
                },
                "firstScheduledStart": _DP,
                "lastScheduledStart": _DP,
                "windows": {
                    "type": "array",
                    "description": "the first `limit` periods, oldest first",
                    "items": {
                        "type": "object",
                        "properties": {
                            "index": {"type": "integer"},
                            "scheduledStartTime": _STR,
                            "scheduledEndTime": _STR,
                            "runAt": _STR,
                            "instances": {"type": "array", "items": _STR},
                        },
                    },
                },
            },
            "required": ["pipelineId", "periods", "instances", "complete", "windows"],
        },
        "EventPage": {
            "type": "object",
            "properties": {
                "events": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer"},
                            "type": _STR,
                            "at": _STR,
                            "pipelineId": _OPT_STR,
                            "objectId": _OPT_STR,
                            "payload": {"type": "object"},
                        },
                    },
                },
                "cursor": {"type": "integer"},
                "hasMore": {"type": "boolean"},
            },
        },
    }


@functools.cache
def openapi_document() -> dict[str, Any]:
    schemas = _rest_schemas()
    pid = _path("pipeline_id")
    limit = _query("limit", "integer", "page size")
    paths: dict[str, Any] = {
        "/": _aws_part(schemas),
        f"{PREFIX}/pipelines": _get(
            "listPipelines",
            "pipelines of the caller, with instance counts per status",
            _json("PipelinePage"),
            [limit, _query("after", "string", "continue after this pipeline id (the previous page's next)")],
        ),
        f"{PREFIX}/pipelines/{{pipeline_id}}": _get("getPipeline", "one pipeline", _json("Pipeline"), [pid]),
        f"{PREFIX}/pipelines/{{pipeline_id}}/graph": _get(
            "getGraph", "components and the references between them", _json("Graph"), [pid]
        ),
        f"{PREFIX}/pipelines/{{pipeline_id}}/grid": _get(
            "getGrid",
            "instances by schedule period (newest first) and component",
            _json("Grid"),
            [
                pid,
                _query("from", "string", "earliest scheduled start (inclusive)"),
                _query("to", "string", "latest scheduled start (exclusive); a previous page's nextTo"),
                limit,
            ],
        ),
        f"{PREFIX}/pipelines/{{pipeline_id}}/runs": _get(
            "listRuns",
            "the rows `list-runs` prints, in one call: instances as flat objects (field key to value), "
            "oldest scheduled start first",
            _json("RunPage"),
            [
                pid,
                _query("status", "string", "comma-separated statuses (any of them), e.g. RUNNING,FAILED"),
                _query("startedBetween", "string", "START,END: actual start within (inclusive)"),
                _query("scheduledBetween", "string", "START,END: scheduled start within (inclusive)"),
                _query("limit", "integer", "most rows returned (default and maximum 100000)"),
            ],
        ),
        f"{PREFIX}/pipelines/{{pipeline_id}}/instances/{{instance_id}}": _get(
            "getInstance", "one instance with its attempts", _json("Instance"), [pid, _path("instance_id")]
        ),
        f"{PREFIX}/pipelines/{{pipeline_id}}/attempts/{{attempt_id}}/log": _get(
            "getAttemptLog",
            "a window of an attempt's log: `limit` bytes from `offset`, or the last `tail` bytes "
            "(header x-tailrace-next-offset says where to continue, x-tailrace-size the log's size)",
            {"description": "log text", "content": {"text/plain": {"schema": {"type": "string"}}}},
            [
                pid,
                _path("attempt_id"),
                _query("offset", "integer", "byte offset"),
                _query("limit", "integer", "bytes to return (at most 262144, the default)"),
                _query("tail", "integer", "return the last N bytes instead (at most 262144)"),
            ],
        ),
        f"{PREFIX}/pipelines/{{pipeline_id}}/activation-preview": _preview_post(),
        f"{PREFIX}/broadcasts": _broadcast_post(),
        f"{PREFIX}/events": _get(
            "listEvents",
            "events after a cursor, oldest first",
            _json("EventPage"),
            [
                _query("after", "integer", "cursor: the previous page's cursor (0 for the start)"),
                _query("pipelineId", "string", "only this pipeline's events"),
                limit,
            ],
        ),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tailrace API",
            "version": __version__,
            "description": "The AWS Data Pipeline API (POST /) and the REST API the console uses.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "AWS Signature Version 4 (service datapipeline, any region) with a tailrace "
                    "access key from `tailrace keys create`",
                },
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "ACCESS_KEY_ID:SECRET (REST only)",
                },
            },
        },
    }
