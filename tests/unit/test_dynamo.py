"""dynamo.batch_get / batch_write: any number of keys or requests in DynamoDB's batch sizes,
and what comes back unprocessed tried again until it is done, or an error."""

from __future__ import annotations

from typing import Any

import pytest
from media_pipeline import dynamo


class Throttled:
    """A client that leaves the last key or request of every call unprocessed, ``times`` times
    in all, and records each call's batch."""

    def __init__(self, times: int, items: dict[str, dict[str, Any]] | None = None) -> None:
        self.left = times
        self.items = items or {}
        self.calls: list[list[Any]] = []
        self.consistent: list[bool] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        [(table, request)] = RequestItems.items()
        keys = request["Keys"]
        self.calls.append(keys)
        self.consistent.append(request.get("ConsistentRead", False))
        done, unprocessed = self._split(keys)
        found = [self.items[k["id"]["S"]] for k in done if k["id"]["S"] in self.items]
        response: dict[str, Any] = {"Responses": {table: found}}
        if unprocessed:
            response["UnprocessedKeys"] = {table: {**request, "Keys": unprocessed}}
        return response

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        [(table, requests)] = RequestItems.items()
        self.calls.append(requests)
        _done, unprocessed = self._split(requests)
        return {"UnprocessedItems": {table: unprocessed}} if unprocessed else {}

    def _split(self, batch: list[Any]) -> tuple[list[Any], list[Any]]:
        if self.left and batch:
            self.left -= 1
            return batch[:-1], batch[-1:]
        return batch, []


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dynamo.time, "sleep", lambda seconds: None)


def key(i: int) -> dict[str, Any]:
    return {"id": {"S": f"k{i}"}}


def test_batch_get_splits_by_100_and_retries_unprocessed_keys_with_the_options() -> None:
    items = {f"k{i}": {"id": {"S": f"k{i}"}} for i in range(0, 250, 2)}  # every other exists
    client = Throttled(times=2, items=items)
    found = dynamo.batch_get(client, "t", [key(i) for i in range(250)], ConsistentRead=True)
    assert sorted(i["id"]["S"] for i in found) == sorted(items)
    # the first batch's last key comes back unprocessed twice
    assert [len(c) for c in client.calls] == [100, 1, 1, 100, 50]
    assert all(client.consistent)  # the options go with every call, retries too


def test_batch_write_splits_by_25_and_retries_unprocessed_requests() -> None:
    requests = [{"PutRequest": {"Item": key(i)}} for i in range(30)]
    client = Throttled(times=1)
    dynamo.batch_write(client, "t", requests)
    assert [len(c) for c in client.calls] == [25, 1, 5]
    assert [r for c in client.calls for r in c].count(requests[24]) == 2


def test_what_stays_unprocessed_is_an_error_not_lost() -> None:
    with pytest.raises(RuntimeError, match="BatchWriteItem left items unprocessed"):
        dynamo.batch_write(Throttled(times=100), "t", [{"PutRequest": {"Item": key(1)}}])
    with pytest.raises(RuntimeError, match="BatchGetItem left keys unprocessed"):
        dynamo.batch_get(Throttled(times=100), "t", [key(1)])
