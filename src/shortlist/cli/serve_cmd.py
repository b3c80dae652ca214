"""`shortlist serve`: the HTTP service (see `shortlist.serve.app`)."""

from __future__ import annotations

import logging
import logging.config
import os
from typing import Any

import click

from shortlist.cli._common import load_reranker_with_threads, threads_option
from shortlist.cli._llm import chat_config, llm_options, price
from shortlist.errors import InvalidInputError
from shortlist.serve.access import LOG_FORMATS, logging_config


@click.command("serve")
@click.option("--index", "index_dir", type=click.Path(file_okay=False), default=None,
              help="Index folder to serve on /v1/search.")
@click.option("--pipeline-file", "pipeline_file", type=click.Path(dir_okay=False), default=None,
              metavar="FILE",
              help="Serve /v1/search with this pipeline file (shortlist.toml): its first "
              "stage and parameters, K, top N and reranker (served as the default).")
@click.option("--rerank", "specs", multiple=True,
              help="Reranker spec to serve (repeatable; the first is the default).")
@click.option("--name", "names", multiple=True, metavar="NAME[,NAME...]",
              help="Names clients may send as `model` for the --rerank at the same position "
              "(comma-separated for several). With one --rerank, every --name is one more "
              "name for it, e.g. --name rerank-v3.5 --name rerank-english-v3.0.")
@click.option("--accept-any-model", is_flag=True,
              help="Answer a request for any other model name with the default model "
              "(logged once per name); for a single-model server behind clients with a "
              "fixed model name.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Bind address; loopback by default.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port to listen on (checked free before any model loads).")
@click.option("--api-key", default=None,
              help="Require 'Authorization: Bearer KEY' (or set SHORTLIST_API_KEY). Never "
              "logged.")
@click.option("--max-docs", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Most documents per request (and most search candidates k).")
@click.option("--max-top-n", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Largest top_n a request may ask for.")
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
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default="text", show_default=True,
              help="Server and access logs on stderr: text lines, or one JSON object per "
              "line for log shippers.")
@threads_option
def serve_cmd(
    index_dir: str | None,
    pipeline_file: str | None,
    specs: tuple[str, ...],
    names: tuple[str, ...],
    accept_any_model: bool,
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
    log_format: str,
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

    Each request is logged (timestamp, method, path, status, latency, request id,
    model; see --log-format); responses echo the client's X-Request-ID or make one.
    """
    from shortlist._optional import require

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
    aliases = model_names(specs, names)
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
    from shortlist.serve.startup import check_port_free

    # Before any model loads: a taken port fails now, not after the load.
    check_port_free(host, port)
    # One reranker object under all its names: the app serves them as one model.
    rerankers: dict[str, Any] = {}
    for spec, spec_names in zip(specs, aliases, strict=True):
        reranker = load_reranker_with_threads(spec, threads)
        for alias in spec_names:
            rerankers[alias] = reranker
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
        accept_any_model=accept_any_model,
    )
    app = create_app(config, rerankers, index, pipeline, playground)
    # Configured here, at the edge (uvicorn applies the same config again when it starts).
    logging.config.dictConfig(logging_config(log_format))
    _announce(app, config, host, port, index_dir, index, log_format)
    if host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
        logging.getLogger("shortlist.serve").warning(
            "serving on %s without an API key: anyone who can reach it can use it; "
            "set --api-key or SHORTLIST_API_KEY",
            host,
        )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=logging_config(log_format),
        access_log=False,  # shortlist.access logs each request instead (request id, model)
        timeout_graceful_shutdown=30,
    )


def model_names(specs: tuple[str, ...], names: tuple[str, ...]) -> list[list[str]]:
    """The names each --rerank is served under, in order; the first is its main name.

    Each --name is a comma-separated list of names for the --rerank at the same position;
    with a single --rerank, every --name names it. A --rerank without a --name is served
    under its spec."""
    groups = [[n.strip() for n in given.split(",") if n.strip()] for given in names]
    if any(not group for group in groups):
        raise InvalidInputError("--name must not be empty; give a name such as rerank-v3.5")
    if len(specs) == 1 and groups:
        groups = [[n for group in groups for n in group]]
    if len(groups) > len(specs):
        raise InvalidInputError(
            "more --name than --rerank options; give one --name per --rerank (several names "
            "for one model: --name a,b)"
        )
    out = [groups[i] if i < len(groups) else [spec] for i, spec in enumerate(specs)]
    seen: dict[str, int] = {}
    for i, group in enumerate(out):
        for name in group:
            if seen.setdefault(name, i) != i:
                raise InvalidInputError(f"--name {name!r} is given to two --rerank models")
    return out


def _announce(
    app: Any,
    config: Any,
    host: str,
    port: int,
    index_dir: str | None,
    index: Any,
    log_format: str,
) -> None:
    """The startup summary on stderr: a block of text, or one JSON log record."""
    from shortlist.serve.startup import ServedIndex, startup_facts, summary

    shown_host = f"[{host}]" if ":" in host else host
    served = None
    if index is not None and index_dir is not None:
        served = ServedIndex(index_dir, index.generation.name)
    batching = None
    if config.batching:
        batching = {
            "max_tokens": config.max_batch_tokens,
            "max_pairs": config.max_batch_pairs,
            "max_wait_ms": config.max_wait_ms,
            "queue_size": config.queue_size,
        }
    facts = startup_facts(
        url=f"http://{shown_host}:{port}",
        model_names=app.state.model_names,
        index=served,
        auth=config.api_key is not None,
        accept_any_model=config.accept_any_model,
        limits={
            "documents": config.max_documents,
            "top_n": config.max_top_n,
            "bytes": config.max_request_bytes,
        },
        batching=batching,
        playground=any(getattr(r, "path", None) == "/" for r in app.routes),
    )
    if log_format == "json":
        logging.getLogger("shortlist.serve").info(
            "shortlist serve starting", extra={"fields": {"startup": facts}}
        )
    else:
        click.echo(summary(facts), err=True)


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
