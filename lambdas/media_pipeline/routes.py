"""The upload API's routes: each path as API Gateway's resources and docs/openapi.yaml write it,
and the methods it answers.

``handlers/api.py`` serves exactly these (tests/integration/test_api.py asks it every method on
every route), and tests/unit/test_api_contract.py checks them against the OpenAPI document and
the API Gateway resources of terraform/modules/pipeline/api.tf.

A path matches a route exactly, or not at all:

* a ``{name}`` parameter is one whole, non-empty path segment: it never holds a slash and is
  never empty, so ``/images/`` or ``/images//`` can never reach ``GET /images`` as an image id;
* nothing may follow: no trailing slash, no final newline (the patterns end in ``\\Z``; ``$``
  would also match before a final ``\\n``, so that ``/images/x\\n`` looked up image ``x``).

API Gateway itself is more lenient: it routes the percent-decoded path and answers a trailing
slash with the resource without it (``/images/`` is ``/images``; ``/images/<id>%2F`` is
``/images/{id}`` with that id), and its ``path`` may or may not be percent-decoded. So the handler
routes on these patterns, and takes a parameter from API Gateway's decoded ``pathParameters`` only
when it is the segment the path holds (as sent or decoded).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

ROUTES: dict[str, tuple[str, ...]] = {
    "/uploads": ("POST",),
    "/images": ("GET",),
    "/images/{id}": ("GET", "PATCH", "DELETE"),
}

_PARAMETER = re.compile(r"\\\{(\w+)\\\}")  # a {name} segment, once re.escape'd


def pattern(template: str) -> re.Pattern[str]:
    """The exact pattern of a route (``/images/{id}``): one named group per parameter, each one
    non-empty segment; anchored at both ends with ``\\A`` and ``\\Z``."""
    body = _PARAMETER.sub(r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(rf"\A{body}\Z")


_PATTERNS = {template: pattern(template) for template in ROUTES}


def route(path: str) -> tuple[str, dict[str, str]] | None:
    """The route a request path is on and its parameters (percent-decoded), or None."""
    for template, compiled in _PATTERNS.items():
        match = compiled.match(path)
        if match:
            return template, {name: unquote(value) for name, value in match.groupdict().items()}
    return None
