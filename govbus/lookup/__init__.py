"""联机查询 and 部门批量下载 (article 16): a department looks up the current state of a record by
its key, or downloads a resource's whole current state as a file; every answer is filtered to
the department's rights and every query is written to the usage audit chain (article 18).

- ``errors``: ``LookupRefused`` (an HTTP status and a machine-readable code per refusal);
- ``apikeys``: per-department API keys, issued by ``govbus apply``, kept hashed for the service;
- ``request``: the request parser (headers, keys, batches), pure;
- ``rights``: which items a department sees (all, granted, or the masked public view), pure;
- ``store``: the in-memory current state, per partition, with the under-verification flags;
- ``loader``: a consumer in the service's group filling the store from the compacted topics;
- ``audit``: one hash-chained usage audit event per query (the key HMAC-hashed);
- ``service``: the HTTP service (aiohttp): lookups, forwarding, health, metrics, OpenAPI;
- ``download``: the consistent snapshot and its file, manifest and audit event.

docs/lookup.md documents the HTTP API, the authentication choice and the measurements.
"""
