"""`shortlist serve`: the HTTP service (see `shortlist.serve.app`)."""

from __future__ import annotations

import os
from typing import Any

import click

from shortlist.cli._common import load_reranker_with_threads, threads_option
from shortlist.cli._llm import chat_config, llm_options, price


@click.command("serve")
@click.option("--index", "index_dir", type=click.Path(file_okay=False), default=None,
              help="Index folder to serve on /v1/search.")
@click.option("--pipeline-file", "pipeline_file", type=click.Path(dir_okay=False), default=None,
              metavar="FILE",
              help="Serve /v1/search with this pipeline file (shortlist.toml): its first "
              "stage and parameters, K, top N and reranker (served as the default).")
@click.option("--rerank", "specs", multiple=True,
              help="Reranker spec to serve (repeatable; the first is the default).")
@click.option("--name", "names", multiple=True,
              help="Alias for the --rerank at the same position (what clients send as `model`).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Bind address; loopback by default.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--api-key", default=None,
              help="Require 'Authorization: Bearer KEY' (or set SHORTLIST_API_KEY).")
@click.option("--max-docs", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Most documents per request (and most search candidates k).")
@click.option("--max-top-n", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--max-bytes", default=8 * 1024 * 1024, show_default=True,
              type=click.IntRange(min=1), help="Largest request body.")
@click.option("--max-batch-tokens", default=16384, show_default=True,
              type=click.IntRange(min=1), help="Token budget of one model batch.")
@click.option("--max-wait-ms", default=5.0, show_default=True, type=click.FloatRange(min=0),
              help="Longest wait for more requests before an idle model starts a batch.")
@click.option("--queue-size", default=256, show_default=True, type=click.IntRange(min=1),
              help="Requests that may wait for the model; more get 503 with Retry-After.")
@click.option("--no-batching", is_flag=True,
              help="Score each request on its own (no cross-request batching).")
@click.option("--judgements", "judgements_dir", type=click.Path(file_okay=False), default=None,
              metavar="DIR",
              help="Playground: save relevance marks here as a BEIR dataset (corpus.jsonl, "
              "queries.jsonl, qrels/test.tsv) that `shortlist eval DIR` runs on.")
@click.option("--eval-json", "eval_json", type=click.Path(exists=True, dir_okay=False),
              default=None, metavar="FILE",
              help="Playground: show this `shortlist eval --json` file in the eval tab.")
@click.option("--budget", default=2000, show_default=True, type=click.IntRange(min=1),
              help="Playground answers: token budget of the prompt.")
@llm_options(required=False)
@threads_option
def serve_cmd(
    index_dir: str | None,
    pipeline_file: str | None,
    specs: tuple[str, ...],
    names: tuple[str, ...],
    host: str,
    port: int,
    api_key: str | None,
    max_docs: int,
    max_top_n: int,
    max_bytes: int,
    max_batch_tokens: int,
    max_wait_ms: float,
    queue_size: int,
    no_batching: bool,
    judgements_dir: str | None,
    eval_json: str | None,
    budget: int,
    llm_url: str | None,
    llm_model: str | None,
    llm_key_env: str,
    llm_timeout: float,
    llm_retries: int,
    price_in: float | None,
    price_out: float | None,
    threads: int,
) -> None:
    """Serve reranking (Cohere /v1/rerank and /v2/rerank, TEI /rerank) and /v1/search.

    With --index, the server follows the index while `shortlist add`/`delete` write to
    it: each request is answered from one complete generation, and new requests move to
    a new generation as soon as it is committed (GET /ready names the one served).

    SIGTERM or Ctrl-C shuts down gracefully: no new connections, in-flight requests
    finish and the batch queue drains; requests still running after 30 s get 503 with
    Retry-After.

    The web playground is at / (see `shortlist ui`): pipelines side by side, relevance
    marks (--judgements), a saved eval (--eval-json) and answers from an LLM (--llm).
    """
    from shortlist._optional import require
    from shortlist.errors import InvalidInputError

    require("fastapi", "serve", "shortlist serve")
    uvicorn = require("uvicorn", "serve", "shortlist serve")
    require("prometheus_client", "serve", "shortlist serve")
    pipeline = None
    if pipeline_file is not None:
        from shortlist.pipeline_file import PipelineConfig

        pipeline = PipelineConfig.load(pipeline_file)
        if index_dir is None:
            raise InvalidInputError("--pipeline-file needs --index DIR: the index to search")
        if pipeline.reranker is not None and pipeline.reranker not in specs:
            # The file's reranker is served under its spec, first: the default model.
            specs = (pipeline.reranker, *specs)
            names = (pipeline.reranker, *names) if names else names
    if judgements_dir is not None and index_dir is None:
        raise InvalidInputError(
            "--judgements needs --index DIR: marks are made on the served index's passages"
        )
    if not specs and index_dir is None:
        raise InvalidInputError("nothing to serve: give --rerank SPEC and/or --index DIR")
    if len(names) > len(specs):
        raise InvalidInputError("more --name than --rerank options; give one name per --rerank")
    if api_key is None:
        api_key = os.environ.get("SHORTLIST_API_KEY") or None

    from pathlib import Path

    from shortlist.serve.app import ServeConfig, create_app
    from shortlist.serve.playground import PlaygroundConfig

    playground = PlaygroundConfig(
        judgements_dir=Path(judgements_dir) if judgements_dir else None,
        llm=chat_config(llm_url, llm_model, llm_key_env, llm_timeout, llm_retries),
        price=price(price_in, price_out),
        eval_json=Path(eval_json) if eval_json else None,
        budget_tokens=budget,
    )

    # The index is imported by name: it lives in its own module.
    rerankers: dict[str, Any] = {}
    for i, spec in enumerate(specs):
        alias = names[i] if i < len(names) else spec
        rerankers[alias] = load_reranker_with_threads(spec, threads)
    index = None
    if index_dir is not None:
        # Follows the folder: each generation a writer commits is served once it is complete.
        from shortlist.serve.live import LiveIndex

        index = LiveIndex(index_dir, num_threads=threads)

    config = ServeConfig(
        api_key=api_key,
        max_documents=max_docs,
        max_top_n=max_top_n,
        max_request_bytes=max_bytes,
        batching=not no_batching,
        max_batch_tokens=max_batch_tokens,
        max_wait_ms=max_wait_ms,
        queue_size=queue_size,
    )
    app = create_app(config, rerankers, index, pipeline, playground)
    if host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
        click.echo(f"warning: serving on {host} without an API key", err=True)
    click.echo(f"playground: http://{_url_host(host)}:{port}/", err=True)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=30)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _ui_params() -> list[click.Parameter]:
    params: list[click.Parameter] = []
    for param in serve_cmd.params:
        if param.name == "index_dir":
            param = click.Option(
                ["--index", "index_dir"],
                type=click.Path(file_okay=False),
                required=True,
                help="Index folder to explore.",
            )
        params.append(param)
    return params


ui_cmd = click.Command(
    "ui",
    callback=serve_cmd.callback,
    params=_ui_params(),
    help="The web playground on an index: `shortlist serve` with --index required. Open "
    "the printed URL; compare pipelines side by side, mark passages relevant "
    "(--judgements DIR), read a saved eval (--eval-json FILE), and ask an LLM (--llm URL "
    "--llm-model NAME).",
)
