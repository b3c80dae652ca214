"""Serving: the HTTP app, wire schemas and dynamic batching."""
