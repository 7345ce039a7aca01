"""The local edge: the embedded stack serves its CloudFront distributions the way CloudFront does.

    GET https://127.0.0.1:<port>/_edge/<distribution domain>/<object key>?<signature>

The distribution, its origin bucket and its trusted key groups are the ones Terraform created in
the emulator (nothing is configured here). For a distribution with trusted key groups, a request
must carry a signature CloudFront would accept, or gets CloudFront's 403:

* canned policy: ``Expires``, ``Signature``, ``Key-Pair-Id``; the signature is over
  ``{"Statement":[{"Resource":"<this URL>","Condition":{"DateLessThan":{"AWS:EpochTime":E}}}]}``;
* custom policy: ``Policy``, ``Signature``, ``Key-Pair-Id``; the signature is over the policy
  itself, whose ``Resource`` (``*`` and ``?`` wildcards) must match this URL, and whose
  ``DateLessThan`` (and ``DateGreaterThan``, ``IpAddress`` if present) must hold;

both RSA-SHA1 with a key of the distribution's trusted key groups, in CloudFront's URL-safe
base64 (``+`` ``=`` ``/`` written ``-`` ``_`` ``~``). The resource a signature covers is the URL
as the viewer requested it, without the signature's own parameters: here that is the local
edge URL, as the API signs it for a local stack.

What passes is served from the origin bucket as CloudFront serves an object through Origin
Access Control: its Content-Type, Cache-Control, ETag and Last-Modified; ``304 Not Modified`` for
an ``If-None-Match`` (or ``If-Modified-Since``) that matches; ``403`` for a key with no object
(S3 says AccessDenied to a reader without ListBucket). Not emulated: caching itself, other
behaviours than the default one, response headers policies, invalidations (they are accepted by
the emulator's API and change nothing here, where nothing is cached).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import ipaddress
import json
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlencode

PREFIX = "/_edge/"
_SIGNATURE_PARAMETERS = ("Expires", "Policy", "Signature", "Key-Pair-Id")


class Refused(Exception):
    """CloudFront's answer to a request it does not serve: status, error code and message."""

    def __init__(self, code: str, message: str, status: str = "403 Forbidden") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?><Error>'
            f"<Code>{self.code}</Code><Message>{self.message}</Message></Error>"
        ).encode()


def _b64decode(value: str) -> bytes:
    """CloudFront's URL-safe base64 (``-`` ``_`` ``~`` for ``+`` ``=`` ``/``)."""
    standard = value.replace("-", "+").replace("_", "=").replace("~", "/")
    return base64.b64decode(standard, validate=True)


def canned_policy(resource: str, expires: int) -> bytes:
    """The policy a canned signature is made over (CloudFront's exact bytes)."""
    return (
        '{"Statement":[{"Resource":"' + resource + '","Condition":{"DateLessThan":'
        '{"AWS:EpochTime":' + str(expires) + "}}}]}"
    ).encode()


def verify(
    url: str,
    query: Mapping[str, str],
    trusted: Mapping[str, bytes],
    *,
    now: float | None = None,
    client_ip: str | None = None,
) -> None:
    """Raise :class:`Refused` unless ``query`` carries a valid signature for ``url`` (the request
    URL without the signature parameters) by one of the ``trusted`` public keys (id -> PEM)."""
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import padding  # noqa: PLC0415

    now = time.time() if now is None else now
    key_id = query.get("Key-Pair-Id")
    if not key_id:
        raise Refused("MissingKey", "Missing Key-Pair-Id query parameter or cookie value")
    if key_id not in trusted:
        raise Refused("InvalidKey", "Unknown Key")
    if "Signature" not in query:
        raise Refused("MissingKey", "Missing Signature query parameter or cookie value")
    try:
        signature = _b64decode(query["Signature"])
        if "Policy" in query:
            policy = _b64decode(query["Policy"])
        elif "Expires" in query:
            policy = canned_policy(url, int(query["Expires"]))
        else:
            raise Refused("MissingKey", "Missing Policy or Expires query parameter")
    except (ValueError, binascii.Error) as error:
        raise Refused("MalformedSignature", f"Malformed signature: {error}") from None
    key = serialization.load_pem_public_key(trusted[key_id])
    try:
        key.verify(signature, policy, padding.PKCS1v15(), hashes.SHA1())  # type: ignore[union-attr,call-arg] # noqa: S303
    except InvalidSignature:
        raise Refused("AccessDenied", "Access denied") from None
    _check_policy(policy, url, now, client_ip)


def _check_policy(policy: bytes, url: str, now: float, client_ip: str | None) -> None:
    try:
        statements = json.loads(policy)["Statement"]
        (statement,) = statements
        resource = statement.get("Resource", "*")
        condition = statement["Condition"]
        expires = int(condition["DateLessThan"]["AWS:EpochTime"])
    except (ValueError, KeyError, TypeError) as error:
        raise Refused("MalformedPolicy", f"Malformed policy: {error}") from None
    if not fnmatch.fnmatchcase(url, resource):
        raise Refused("AccessDenied", "Access denied")
    if now >= expires:
        raise Refused("AccessDenied", "Access denied")
    after = condition.get("DateGreaterThan")
    if after is not None and now < int(after["AWS:EpochTime"]):
        raise Refused("AccessDenied", "Access denied")
    source = (condition.get("IpAddress") or {}).get("AWS:SourceIp")
    if source and client_ip and ipaddress.ip_address(client_ip) not in ipaddress.ip_network(source):
        raise Refused("AccessDenied", "Access denied")


class Distribution(NamedTuple):
    """What the edge needs of a distribution in the emulator."""

    domain: str
    bucket: str
    trusted: dict[str, bytes]  # key id -> public key PEM; empty: public


def find_distribution(domain: str) -> Distribution | None:
    """The emulator's distribution with this domain name: its S3 origin's bucket and the public
    keys of its default behaviour's trusted key groups."""
    from moto.cloudfront.models import cloudfront_backends  # noqa: PLC0415

    for account in list(cloudfront_backends):
        for backend in list(cloudfront_backends[account].values()):
            for distribution in list(backend.distributions.values()):
                if distribution.domain_name != domain:
                    continue
                config = distribution.distribution_config
                origin = config.Origins["Items"][0]
                bucket = origin.domain_name.split(".s3.", 1)[0].split(".s3-", 1)[0]
                groups = config.DefaultCacheBehavior.trusted_key_groups.items or []
                trusted = {}
                for group_id in groups:
                    group = backend.key_groups.get(group_id)
                    for key_id in group.items if group else []:
                        key = backend.public_keys.get(key_id)
                        if key is not None:
                            trusted[key.id] = key.encoded_key.encode()
                return Distribution(domain, bucket, trusted)
    return None


def _object(bucket: str, key: str) -> Any:
    from moto.s3.models import s3_backends  # noqa: PLC0415

    for account in list(s3_backends):
        backend = s3_backends[account].get("aws")
        if backend is None or bucket not in backend.buckets:
            continue
        return backend.get_object(bucket, key)
    return None


def serve(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answer a request under ``/_edge/`` as CloudFront would."""
    try:
        return _serve(environ, start_response)
    except Refused as refusal:
        body = refusal.body()
        start_response(
            refusal.status,
            [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]


def _serve(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    method = environ.get("REQUEST_METHOD", "GET")
    if method not in ("GET", "HEAD"):
        raise Refused("MethodNotAllowed", f"{method} is not allowed", "405 Method Not Allowed")
    raw_path = environ.get("RAW_URI") or environ.get("PATH_INFO", "")
    path = raw_path.split("?", 1)[0].removeprefix(PREFIX)
    domain, _, quoted_key = path.partition("/")
    distribution = find_distribution(domain)
    if distribution is None:
        raise Refused("NoSuchDistribution", f"No distribution {domain}", "404 Not Found")
    pairs = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    query = dict(pairs)
    if distribution.trusted:
        rest = urlencode([(k, v) for k, v in pairs if k not in _SIGNATURE_PARAMETERS])
        host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
        url = f"{environ.get('wsgi.url_scheme', 'https')}://{host}{PREFIX}{domain}/{quoted_key}"
        verify(
            url + (f"?{rest}" if rest else ""),
            query,
            distribution.trusted,
            client_ip=environ.get("REMOTE_ADDR"),
        )
    stored = _object(distribution.bucket, unquote(quoted_key))
    if stored is None:
        raise Refused("AccessDenied", "Access Denied")
    etag = stored.etag
    last_modified = stored.last_modified_RFC1123
    headers = [
        ("Content-Type", stored.metadata.get("content-type", "binary/octet-stream")),
        ("ETag", etag),
        ("Last-Modified", last_modified),
        ("Accept-Ranges", "bytes"),
        ("X-Cache", "Miss from cloudfront (local edge)"),
    ]
    if "cache-control" in stored.metadata:
        headers.append(("Cache-Control", stored.metadata["cache-control"]))
    if _not_modified(environ, etag, last_modified):
        start_response("304 Not Modified", [h for h in headers if h[0] != "Content-Type"])
        return []
    body = b"" if method == "HEAD" else stored.value
    start_response("200 OK", [*headers, ("Content-Length", str(stored.size))])
    return [body]


def _not_modified(environ: Mapping[str, Any], etag: str, last_modified: str) -> bool:
    """RFC 9110: If-None-Match decides when present (weak comparison), else If-Modified-Since."""
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or etag in tags
    since = environ.get("HTTP_IF_MODIFIED_SINCE")
    if since:
        try:
            return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False
