"""Where the backends this code runs on send S3's events differently, and what the product does
about each: the one place that says which backend a branch is for, and why it stays.

The same handlers run on AWS, on the embedded stack (moto, ``make up``) and on LocalStack
(``make localstack-up``); the e2e tests run them on the last two. What differs:

============================  ==========  ==========  ====================  ======================
what S3 sends                 AWS         moto        LocalStack            handled by
============================  ==========  ==========  ====================  ======================
``detail.object.key``         raw         raw         percent-encoded       :func:`candidate_keys`
ETag field of ``detail``      ``etag``    ``eTag``    ``etag``              :func:`event_etag`
``detail.object.sequencer``   one per     one per     one constant for      ``Decision.UNORDERED``
                              write       write       every event
``detail.deletion-type``      set         ``""``      set                   read by nothing
============================  ==========  ==========  ====================  ======================

* **Keys.** :func:`candidate_keys` gives the raw key, then its percent-decoding when that
  differs; the caller keeps the one S3 confirms (``objects.open_version``,
  ``lifecycle.object_deleted``). Powertools' ``S3EventBridgeNotificationObject.key`` is not
  used: it applies ``unquote_plus``, which corrupts a literal ``+`` of a raw key. On AWS the raw
  key is found first, so the second candidate is never tried for an object that exists.
* **The ETag field.** :func:`event_etag` reads either spelling.
* **Sequencers.** S3 gives every write of a key its own, growing sequencer; LocalStack puts the
  same one in every event, so it cannot order two uploads of one key (or an upload and a
  delete). ``model.decide`` never trusts an equal sequencer with another ETag, nor one equal to
  the delete's (``Decision.UNORDERED``); ``model.resolve`` then asks S3 which version the key
  holds now (``objects.is_current``, at most once per event: ``pipeline.flow``), and the
  conditions of ``item_writes`` (``_installable``, ``deletion_write``) accept an equal
  sequencer only for exactly the item that was read. S3's own events never take these branches
  on AWS, but jobs the reconciler sends again (``reconcile.next_sequencer``) can repeat a
  sequencer, so the tie-break is kept on every backend.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote


def candidate_keys(raw_key: str) -> tuple[str, ...]:
    """The keys an event's ``detail.object.key`` may name: the raw key, then its
    percent-decoding if that differs (LocalStack encodes keys)."""
    decoded = unquote(raw_key)
    return (raw_key,) if decoded == raw_key else (raw_key, decoded)


def event_etag(obj: dict[str, Any]) -> Any:
    """``detail.object``'s ETag: ``etag`` (AWS, LocalStack) or ``eTag`` (moto); None if neither."""
    return obj.get("etag", obj.get("eTag"))
