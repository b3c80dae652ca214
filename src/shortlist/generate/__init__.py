"""Answers from an LLM over the top passages: an OpenAI-compatible chat client (`chat`),
the SSE stream reader it uses (`sse`), citation checking (`citations`), token cost
(`cost`) and the whole retrieve -> pack -> stream flow (`answer`)."""
