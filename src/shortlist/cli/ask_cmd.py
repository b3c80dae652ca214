"""`shortlist ask`: retrieve and rerank, pack the top passages, stream an LLM's answer
with citations checked against the prompt, and its token counts and cost."""

from __future__ import annotations

import json
from typing import Any

import click

from shortlist.cli._common import (
    echo_json,
    filter_option,
    first_stage_options,
    parse_filters,
    threads_option,
)
from shortlist.cli._llm import chat_config, llm_options, price
from shortlist.validate import check_query


@click.command("ask")
@click.argument("question")
@click.option("--index", "index_dir", required=True, type=click.Path(), help="Index directory.")
@click.option(
    "--pipeline-file",
    "--pipeline",
    "pipeline_file",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Rank with this pipeline file (shortlist.toml).",
)
@first_stage_options
@click.option("--rerank", "rerank_spec", default=None, metavar="SPEC", help="Reranker spec.")
@click.option(
    "--top-n",
    default=None,
    type=click.IntRange(min=1),
    help="Passages ranked for the prompt (default 10, or the pipeline file's).",
)
@filter_option
@click.option(
    "--budget",
    default=2000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Token budget of the prompt.",
)
@llm_options(required=True)
@click.option(
    "--show-prompt",
    is_flag=True,
    help="Print the exact request body sent to the LLM before the answer.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object (prompt, answer, citations, usage) at the end.",
)
@threads_option
def ask_cmd(
    question: str,
    index_dir: str,
    pipeline_file: str | None,
    mode: str | None,
    k: int | None,
    rerank_spec: str | None,
    top_n: int | None,
    filters: tuple[str, ...],
    budget: int,
    llm_url: str,
    llm_model: str,
    llm_key_env: str,
    llm_timeout: float,
    llm_retries: int,
    price_in: float | None,
    price_out: float | None,
    show_prompt: bool,
    as_json: bool,
    threads: int,
) -> None:
    """Answer QUESTION from the index's passages with an OpenAI-compatible LLM.

    The answer streams as it is written; then each citation [n] is listed with the
    passage it names (a citation of a passage that was not in the prompt is flagged),
    and the token counts the server reported, with the cost when --price-in/--price-out
    are given.
    """
    from shortlist.cli.search_cmd import search_ranking
    from shortlist.generate.answer import Answered, PromptPacked, answer_events
    from shortlist.generate.chat import ChatClient, TextDelta
    from shortlist.store.index import Index

    check_query(question, "the question (first argument)")
    config = chat_config(llm_url, llm_model, llm_key_env, llm_timeout, llm_retries)
    cost = price(price_in, price_out)
    index = Index.open(index_dir, num_threads=threads)
    ranking = search_ranking(
        index,
        question,
        mode=mode,
        k=k,
        filter=parse_filters(filters) or None,
        rerank_spec=rerank_spec,
        top_n=top_n,
        pipeline_file=pipeline_file,
        threads=threads,
    )
    prompt: dict[str, Any] = {}
    for event in answer_events(
        question, ranking, ChatClient(config), budget_tokens=budget, price=cost
    ):
        if isinstance(event, PromptPacked):
            prompt = event.packed.to_dict()
            if show_prompt:
                click.echo(f"--- request to {config.endpoint} ---", err=as_json)
                click.echo(json.dumps(event.request, ensure_ascii=False, indent=2), err=as_json)
                click.echo("--- answer ---", err=as_json)
        elif isinstance(event, TextDelta):
            if not as_json:
                click.echo(event.text, nl=False)
        elif isinstance(event, Answered):
            if as_json:
                echo_json({"question": question, "prompt": prompt, **event.to_dict()})
            else:
                _summary(event, len(prompt.get("included", [])))


def _summary(answered: Any, n_in_prompt: int) -> None:
    click.echo("\n")
    if answered.citations:
        click.echo("citations:")
    for c in answered.citations:
        if c.in_prompt:
            click.echo(f"  [{c.number}] {c.doc_id} (passage {c.id})")
        else:
            click.echo(
                f"  [{c.number}] NOT IN THE PROMPT: the prompt held passages 1-{n_in_prompt}"
            )
    if not answered.citations:
        click.echo("citations: none (the answer cites no passage)")
    usage = answered.usage
    if usage is None:
        click.echo("tokens: not reported by the server (no 'usage' in its answer)")
        return
    line = (
        f"tokens: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion = "
        f"{usage.total_tokens}"
    )
    if answered.cost_usd is not None:
        line += f"; cost ${answered.cost_usd:.6f}"
    else:
        line += "; cost: give --price-in/--price-out (USD per million tokens)"
    click.echo(line)
