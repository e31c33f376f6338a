"""Stage 4, call: one request per chunk, through a transport, with retries.

Layers, outermost first: `RerankClient` (retry policy, usage records, error translation)
-> `Transport` (HTTP via aiohttp, or the in-process `local` scorer) -> the wire. Provider
adapters (`pipeline.providers`) only translate bodies; they never do I/O.
"""
