"""POST /api/v1/broadcasts and `tailrace broadcast`: an operator's message into the console's live
feed (the outbox), owner-scoped, with its text checked."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tailrace.api.client import ApiCallError, DataPipelineClient
from tailrace.events.model import Broadcast


def broadcasts(store) -> list[Broadcast]:
    return [r.event for r in store.events_after(0, limit=1000) if isinstance(r.event, Broadcast)]


def test_cli_broadcast_goes_through_the_api_as_the_callers_owner(world, cli):
    code, _, err = cli("broadcast", "deploy at 10:00 UTC")
    assert code == 0, err
    assert "console pages of carol" in err
    (sent,) = broadcasts(world.store)
    assert (sent.text, sent.owner, sent.sender) == ("deploy at 10:00 UTC", "carol", "carol")


def test_cli_broadcast_refuses_bad_text_before_sending(world, cli):
    code, _, err = cli("broadcast", "x" * 1001)
    assert code != 0 and "text: at most 1000 characters; got 1001" in err
    code, _, err = cli("broadcast", "   ")
    assert code != 0 and "text: a broadcast needs some text" in err
    assert broadcasts(world.store) == []


def test_cli_broadcast_help(cli, capsys):
    with pytest.raises(SystemExit) as stop:
        cli("broadcast", "--help")
    assert stop.value.code == 0


def test_rest_broadcast_needs_a_key_and_is_scoped_to_its_owner(world):
    url = world.server.url + "/api/v1/broadcasts"
    req = urllib.request.Request(
        url, data=b'{"text": "hi"}', method="POST", headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=10)
    assert refused.value.code in (401, 403)
    bob = world.keys.create("bob")
    client = DataPipelineClient(world.server.url, bob.access_key_id, bob.secret_access_key)
    # There is no way to name another owner: the key decides whose pages see it.
    assert client.rest("POST", "/api/v1/broadcasts", {"text": "from bob", "owner": "alice"}) == {
        "text": "from bob",
        "owner": "bob",
    }
    assert [(b.owner, b.text) for b in broadcasts(world.store)] == [("bob", "from bob")]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"text": 5}, 'text: expected a JSON object {"text": "..."} with a string'),
        ({}, 'text: expected a JSON object {"text": "..."} with a string'),
        ({"text": "a\x00b"}, "NUL"),
        ({"text": "ring\x07"}, "text: control character U+0007 is not allowed"),
        ({"text": "y" * 2000}, "text: at most 1000 characters; got 2000"),
    ],
)
def test_rest_broadcast_bad_bodies_are_400_naming_the_field(world, body, message):
    key = world.keys.create("alice")
    client = DataPipelineClient(world.server.url, key.access_key_id, key.secret_access_key)
    with pytest.raises(ApiCallError) as err:
        client.rest("POST", "/api/v1/broadcasts", body)
    assert err.value.status == 400 and message in str(err.value), json.dumps(body)
    assert broadcasts(world.store) == []
