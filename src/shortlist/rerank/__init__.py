"""The second stage: rerankers behind one interface, built from spec strings."""
