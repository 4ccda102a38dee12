"""Linkage protocol v1 between the platform and the linked units (banks and departments).

The pieces here are shared by the platform's server side and by the units, so they depend on
nothing else in Zhixing (only the standard library, pydantic and, for the SDK, httpx):

- :mod:`zhixing.linkage.signing`: ZX1-HMAC-SHA256 request and response authentication.
- :mod:`zhixing.linkage.wire`: the JSON messages (tasks, results, events, batches).
- :mod:`zhixing.linkage.client`: the unit-side SDK (pull mode) and the push-mode receiver.

The protocol, written for a unit's integration team, is ``docs/linkage-protocol.md``.
"""

PROTOCOL_VERSION = "1"
