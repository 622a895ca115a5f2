"""Responses are written in the model's shapes: the fast path for all-text structures (the
fields of DescribeObjects) gives what the member-by-member path gives."""

from __future__ import annotations

import pytest
from botocore.parsers import create_parser

from tailrace.api import shapes
from tailrace.state import Status


def _objects(*fields):
    return {
        "pipelineObjects": [{"id": "@A_1", "name": "@A_1", "fields": list(fields)}],
        "hasMoreResults": False,
    }


def _fields_out(*fields):
    return shapes.render_output("DescribeObjects", _objects(*fields))["pipelineObjects"][0]["fields"]


def test_text_fields_pass_as_they_are():
    fields = [{"key": "@status", "stringValue": "FINISHED"}, {"key": "parent", "refValue": "A"}]
    assert _fields_out(*fields) == fields


def test_fields_that_are_not_plain_text_are_rewritten_member_by_member():
    out = _fields_out(
        {"key": "@status", "stringValue": Status.RUNNING},  # a str subclass
        {"key": "@attemptCount", "stringValue": 3},
        {"key": "errorMessage", "stringValue": None},
        {"key": "x", "stringValue": "y", "internal": "dropped"},
    )
    assert out == [
        {"key": "@status", "stringValue": "RUNNING"},
        {"key": "@attemptCount", "stringValue": "3"},
        {"key": "errorMessage"},
        {"key": "x", "stringValue": "y"},
    ]
    import orjson

    assert orjson.dumps(out[0]) == b'{"key":"@status","stringValue":"RUNNING"}'


def test_a_missing_required_member_is_a_server_bug():
    with pytest.raises(AssertionError, match=r"Field\.key"):
        _fields_out({"key": "a", "stringValue": "b"}, {"stringValue": "no key"})


def test_botocore_parses_what_is_written():
    import orjson

    body = shapes.render_output(
        "DescribeObjects",
        {
            "pipelineObjects": [
                {"id": "@A_1", "name": "@A_1", "fields": [{"key": "a", "stringValue": "b"}]},
                {"id": "A", "name": "A", "fields": [{"key": "n", "stringValue": 7}]},
            ],
            "hasMoreResults": True,
            "marker": "100",
        },
    )
    parsed = create_parser("json").parse(
        {"body": orjson.dumps(body), "headers": {}, "status_code": 200},
        shapes.operation("DescribeObjects").output_shape,
    )
    assert parsed["pipelineObjects"][1]["fields"] == [{"key": "n", "stringValue": "7"}]
    assert parsed["marker"] == "100" and parsed["hasMoreResults"] is True
