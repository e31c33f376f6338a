"""Stage 4, call: one request per chunk, through a transport, with retries.

Layers, outermost first: `RerankClient` (retry policy, usage records, error translation)
-> a `pipeline.transport.Transport` (`HttpTransport` here over aiohttp, or the `local`
provider's in-process scorer) -> the wire. Provider adapters (`pipeline.providers`) only
translate bodies; they never do I/O.
"""
