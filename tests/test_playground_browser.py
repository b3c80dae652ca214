"""The playground in a real headless Chromium (Debian's chromium + chromedriver, Selenium).

One server, one loopback LLM and one browser serve the whole module. Every test loads the
page afresh and fails on any console error (`_console_errors`); the error-message test
allows only the failed requests it provokes. With SHORTLIST_SCREENSHOTS=DIR the tests
save the README's screenshots there (docs/img is where they are committed).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi", reason="fastapi not installed: pip install -e '.[serve]'")
pytest.importorskip("selenium", reason="selenium not installed: pip install -e '.[dev]'")

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from chat_fakes import FakeLLM, LLMServer
from clirun import run_cli
from playground_env import lee_documents, make_lee_index, make_playground_app
from serve_fakes import OverlapScorer, running
from shortlist.rerank.registry import load_reranker
from shortlist.retrieve.analyzer import Analyzer

pytestmark = pytest.mark.browser

QUERY = "floods threaten millions of people"
BIENCODER = "bi-encoder:hashing:64"
WAIT_S = 30
ANSWER = (
    "Floods in Hunan and along the Elbe forced hundreds of thousands from their homes "
    "[1][2], and millions face hunger in southern Africa [9]."
)


def _binaries() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    return chromium, driver


@pytest.fixture(scope="module")
def eval_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `shortlist eval --json` over the Lee articles: queries are the first words of
    eight articles, each judged relevant to its own article."""
    root = tmp_path_factory.mktemp("evalset")
    docs = lee_documents()
    with (root / "corpus.jsonl").open("w") as fh:
        for d in docs:
            fh.write(json.dumps({"_id": d.id, "title": d.title, "text": d.text}) + "\n")
    (root / "qrels").mkdir()
    queries, qrels = [], ["query-id\tcorpus-id\tscore"]
    for d in docs[:8]:
        queries.append(json.dumps({"_id": "q-" + d.id, "text": " ".join(d.text.split()[:9])}))
        qrels.append(f"q-{d.id}\t{d.id}\t1")
    (root / "queries.jsonl").write_text("\n".join(queries) + "\n")
    (root / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    out = root / "eval.json"
    result = run_cli(
        "eval", str(root), "--pipeline", "bm25", "--pipeline", f"bm25+{BIENCODER}",
        "-k", "10,20", "--model", "hashing:64", "--json", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(out.read_text())["where_reranking_hurts"], "the fixture needs a loss"
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, eval_json: Path) -> Iterator[dict[str, Any]]:
    _binaries()
    tmp = tmp_path_factory.mktemp("playground")
    index = make_lee_index(tmp / "index")
    judged = tmp / "judged"
    rerankers = {
        "broken": OverlapScorer(name="fake:broken", fail_on="Mugabe"),
        BIENCODER: load_reranker(BIENCODER),
    }
    llm = LLMServer(FakeLLM(answer=ANSWER, delay_s=0.05))
    try:
        app = make_playground_app(
            index, judgements=judged, llm_url=llm.url, eval_json=eval_json, rerankers=rerankers
        )
        with running(app) as url:
            yield {"url": url, "judged": judged, "llm": llm, "eval": eval_json}
    finally:
        llm.stop()


@pytest.fixture(scope="module")
def driver(site: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    chromium, chromedriver = _binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--window-size=1280,900", "--hide-scrollbars",
        f"--user-data-dir={tmp_path_factory.mktemp('profile')}",
    ):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=chromedriver)
    browser = webdriver.Chrome(service=service, options=options)
    try:
        yield browser
    finally:
        browser.quit()


def _console_errors(driver: WebDriver) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture
def page(driver: WebDriver, site: dict[str, Any]) -> Iterator[WebDriver]:
    """The page loaded afresh at 1280 px; fails the test on any console error."""
    driver.set_window_size(1280, 900)
    driver.get(site["url"] + "/")
    _until(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    yield driver
    errors = _console_errors(driver)
    assert not errors, errors


def _until(driver: WebDriver, condition: Callable[[WebDriver], Any]) -> Any:
    # A re-render may replace an element between finding it and reading it: try again.
    ignored = (StaleElementReferenceException, NoSuchElementException)
    return WebDriverWait(driver, WAIT_S, ignored_exceptions=ignored).until(condition)


def _set(element: WebElement, text: str) -> None:
    element.clear()
    if text:
        element.send_keys(text)


def _setup(driver: WebDriver, pipelines: list[str], *, k: int = 20, n: int = 8) -> None:
    inputs = driver.find_elements(By.CSS_SELECTOR, "#pipelines input.pipeline")
    while len(inputs) < len(pipelines):
        driver.find_element(By.ID, "add-column").click()
        inputs = driver.find_elements(By.CSS_SELECTOR, "#pipelines input.pipeline")
    for element, value in zip(inputs, pipelines + [""] * len(inputs), strict=False):
        _set(element, value)
    _set(driver.find_element(By.ID, "k"), str(k))
    _set(driver.find_element(By.ID, "top-n"), str(n))


def _run(driver: WebDriver, query: str, columns: int) -> list[WebElement]:
    """Type `query`, press Enter, wait for `columns` finished columns."""
    box = driver.find_element(By.ID, "query")
    _set(box, query)
    box.send_keys(Keys.ENTER)
    return _until(
        driver,
        lambda d: (
            cols
            if len(cols := d.find_elements(By.CSS_SELECTOR, "#columns .column:not(.loading)"))
            == columns
            else False
        ),
    )


def _shot(driver: WebDriver, name: str, height: int = 900) -> None:
    folder = os.environ.get("SHORTLIST_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        width = driver.execute_script("return window.innerWidth")
        driver.set_window_size(width, height)
        driver.save_screenshot(str(Path(folder) / name))


def _api_search(url: str, rerank: str | bool) -> dict[str, Any]:
    body = {"query": QUERY, "mode": "bm25", "rerank": rerank, "k": 20, "top_n": 8}
    r = httpx.post(url + "/v1/search", json=body, timeout=30)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def test_page_loads_with_the_served_pipelines(page: WebDriver) -> None:
    values = [
        e.get_attribute("value")
        for e in page.find_elements(By.CSS_SELECTOR, "#pipelines input.pipeline")
    ]
    assert values == ["hybrid", "hybrid+overlap"]
    options = page.find_elements(By.CSS_SELECTOR, "#served-pipelines option")
    assert "bm25+overlap" not in [o.get_attribute("value") for o in options]  # served: hybrid+
    assert page.find_element(By.ID, "k").get_attribute("value") == "50"
    assert page.find_element(By.ID, "answer-button").is_enabled()


def test_two_pipelines_side_by_side_match_the_json_api(
    page: WebDriver, site: dict[str, Any]
) -> None:
    _setup(page, ["bm25", "bm25+overlap"])
    columns = _run(page, QUERY, 2)
    for column, rerank in zip(columns, (False, "overlap"), strict=True):
        api = _api_search(site["url"], rerank)
        hits = column.find_elements(By.CSS_SELECTOR, ".hit")
        assert [h.get_attribute("data-id") for h in hits] == [r["id"] for r in api["results"]]
        for hit, expected in zip(hits, api["results"], strict=True):
            first, rank = expected["first_stage_rank"], expected["rank"]
            assert hit.get_attribute("data-first-rank") == str(first)
            move = hit.find_element(By.CSS_SELECTOR, ".move").text
            if first > 8:
                assert move == "new"
            elif first == rank:
                assert move == "="
            else:
                assert move == ("↑" if first > rank else "↓") + str(abs(first - rank))
            assert hit.find_element(By.CSS_SELECTOR, ".title").text.startswith("ABC news item")
            assert "section:" in hit.find_element(By.CSS_SELECTOR, ".meta").text
        marks = column.find_elements(By.CSS_SELECTOR, ".hit .text mark")
        terms = set(Analyzer().analyze(QUERY))
        assert marks and all(Analyzer().analyze(m.text)[0] in terms for m in marks)
        timing = {
            t.get_attribute("data-stage"): float(t.get_attribute("data-ms") or "nan")
            for t in column.find_elements(By.CSS_SELECTOR, ".timing")
        }
        assert set(timing) == set(api["timings_ms"])
        assert all(ms > 0 for ms in timing.values())
        assert timing["total"] >= timing["retrieve"]
    moves = {e.text for e in columns[1].find_elements(By.CSS_SELECTOR, ".move")}
    assert any(m.startswith("↑") for m in moves) and any(m.startswith("↓") for m in moves)
    # Passages in both columns are linked by one colour.
    linked = page.find_elements(By.CSS_SELECTOR, "#col-0 .hit.linked")
    assert linked
    first = linked[0]
    twin = page.find_element(
        By.CSS_SELECTOR, f"#col-1 .hit[data-id='{first.get_attribute('data-id')}']"
    )
    assert "linked" in (twin.get_attribute("class") or "")
    colour = "getComputedStyle(arguments[0]).borderLeftColor"
    assert page.execute_script(f"return {colour}", first) == page.execute_script(
        f"return {colour}", twin
    )
    _shot(page, "playground-side-by-side.png")


def test_marking_a_passage_relevant_writes_qrels(page: WebDriver, site: dict[str, Any]) -> None:
    _setup(page, ["bm25", "bm25+overlap"])
    columns = _run(page, QUERY, 2)
    hit = columns[1].find_elements(By.CSS_SELECTOR, ".hit")[0]
    doc_id = hit.get_attribute("data-doc-id")
    hit.find_element(By.CSS_SELECTOR, ".judge.yes").click()
    _until(
        page,
        lambda d: (
            d.find_element(
                By.CSS_SELECTOR, f"#col-1 .hit[data-doc-id='{doc_id}'] .judge.yes"
            ).get_attribute("aria-pressed")
            == "true"
        ),
    )
    assert "saved to" in page.find_element(By.ID, "message").text
    qrels = (site["judged"] / "qrels" / "test.tsv").read_text().splitlines()
    queries = [json.loads(x) for x in (site["judged"] / "queries.jsonl").read_text().splitlines()]
    qid = next(q["_id"] for q in queries if q["text"] == QUERY)
    assert f"{qid}\t{doc_id}\t1" in qrels
    # The mark shows in every column that holds the document.
    for button in page.find_elements(By.CSS_SELECTOR, f".hit[data-doc-id='{doc_id}'] .judge.yes"):
        assert button.get_attribute("aria-pressed") == "true"


def test_eval_tab_shows_a_saved_eval_and_opens_a_loss(
    page: WebDriver, site: dict[str, Any]
) -> None:
    report = json.loads(site["eval"].read_text())
    page.find_element(By.ID, "tab-eval").click()
    rows = _until(page, lambda d: d.find_elements(By.CSS_SELECTOR, "table.summary tbody tr"))
    assert len(rows) == len(report["summary"]) == 4
    assert (
        rows[1].find_elements(By.TAG_NAME, "td")[2].text == f"{report['summary'][1]['ndcg@10']:.4f}"
    )
    assert len(page.find_elements(By.CSS_SELECTOR, "svg.plot circle")) == 4
    losses = page.find_elements(By.CSS_SELECTOR, "table.losses button.open-query")
    assert len(losses) == len(report["where_reranking_hurts"])
    # The same file, opened from disk through the file picker, renders the same table.
    page.find_element(By.ID, "eval-file").send_keys(str(site["eval"]))
    assert len(page.find_elements(By.CSS_SELECTOR, "table.summary tbody tr")) == 4
    # A file of several datasets (`shortlist eval A B --json`) shows one section each.
    several = site["eval"].with_name("several.json")
    other = {**report, "dataset": "other"}
    several.write_text(json.dumps({"schema_version": 2, "datasets": [report, other]}))
    page.find_element(By.ID, "eval-file").send_keys(str(several))
    _until(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "table.summary")) == 2)
    heads = [h.text for h in page.find_elements(By.CSS_SELECTOR, "#eval-content h2")]
    assert [h.split(" · ")[0] for h in heads] == [report["dataset"], "other"]
    page.find_element(By.ID, "eval-file").send_keys(str(site["eval"]))
    _until(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "table.summary")) == 1)
    _shot(page, "playground-eval.png", height=1250)
    hurt = report["where_reranking_hurts"][0]
    page.find_element(By.CSS_SELECTOR, "table.losses button.open-query").click()
    columns = _until(
        page,
        lambda d: (
            cols
            if len(cols := d.find_elements(By.CSS_SELECTOR, "#columns .column .hits")) == 2
            else False
        ),
    )
    assert page.find_element(By.ID, "compare-view").is_displayed()
    assert page.find_element(By.ID, "query").get_attribute("value") == hurt["query"]
    heads = [c.find_element(By.XPATH, "..").find_element(By.TAG_NAME, "h2").text for c in columns]
    assert heads == ["bm25", f"bm25+{BIENCODER}"]
    assert page.find_element(By.ID, "k").get_attribute("value") == str(hurt["k"])


def test_answer_streams_with_citations_linked_to_passages(
    page: WebDriver, site: dict[str, Any]
) -> None:
    _setup(page, ["bm25+overlap", "bm25"], n=5)
    columns = _run(page, QUERY, 2)
    ids = [h.get_attribute("data-id") for h in columns[0].find_elements(By.CSS_SELECTOR, ".hit")]
    page.find_element(By.ID, "answer-button").click()
    answer = page.find_element(By.ID, "answer")
    _until(page, lambda d: answer.get_attribute("data-state") == "done")
    assert answer.text.replace("⚠", "") == ANSWER
    links = answer.find_elements(By.CSS_SELECTOR, "a.cite")
    assert [(a.text, a.get_attribute("data-passage")) for a in links] == [
        ("[1]", ids[0]),
        ("[2]", ids[1]),
    ]
    for link in links:
        target = page.find_element(By.ID, link.get_attribute("href").split("#", 1)[1])
        assert target.get_attribute("data-id") == link.get_attribute("data-passage")
        assert (
            target.find_element(
                By.XPATH, "ancestor::section[contains(@class, 'column')]"
            ).get_attribute("id")
            == "col-0"
        )
    flagged = answer.find_elements(By.CSS_SELECTOR, ".cite.flagged")
    assert [f.get_attribute("data-number") for f in flagged] == ["9"]
    meta = page.find_element(By.ID, "answer-meta").text
    assert "tokens:" in meta and "not in the prompt: [9]" in meta
    links[1].click()
    _until(
        page,
        lambda d: (
            "flash"
            in (
                d.find_element(By.ID, links[1].get_attribute("href").split("#")[1]).get_attribute(
                    "class"
                )
                or ""
            )
        ),
    )
    page.execute_script(
        "arguments[0].scrollIntoView({block: 'start'})", page.find_element(By.ID, "answer-panel")
    )
    _shot(page, "playground-answer.png")


def test_filters_k_and_n_are_applied(page: WebDriver) -> None:
    _setup(page, ["bm25", "hybrid"], k=6, n=4)
    _set(page.find_element(By.ID, "filters"), "section=world, section=business")
    columns = _run(page, QUERY, 2)
    for column in columns:
        hits = column.find_elements(By.CSS_SELECTOR, ".hit")
        assert len(hits) == 4
        for hit in hits:
            assert {"section: world", "section: business"} & {
                c.text for c in hit.find_elements(By.CSS_SELECTOR, ".chip")
            }
        assert "(k=6)" in column.find_element(By.CSS_SELECTOR, ".describe").text
    _set(page.find_element(By.ID, "filters"), "section")
    page.find_element(By.ID, "run").click()
    message = page.find_element(By.ID, "message")
    _until(page, lambda d: "not key=value" in message.text)


def test_api_key_is_asked_once_and_kept_in_the_session(
    driver: WebDriver, site: dict[str, Any], tmp_path: Path
) -> None:
    index = make_lee_index(tmp_path / "index")
    with running(make_playground_app(index, api_key="s3cret")) as url:
        driver.set_window_size(1280, 900)
        driver.get(url + "/")
        dialog = _until(driver, lambda d: d.find_element(By.ID, "key-dialog"))
        _until(driver, lambda d: dialog.is_displayed())
        driver.find_element(By.ID, "key-input").send_keys("s3cret", Keys.ENTER)
        _until(driver, lambda d: not dialog.is_displayed())
        assert (
            driver.execute_script("return sessionStorage.getItem('shortlist.apiKey')") == "s3cret"
        )
        assert driver.execute_script("return localStorage.length") == 0
        _setup(driver, ["bm25"])
        assert driver.find_elements(By.CSS_SELECTOR, ".hit") == []
        assert _run(driver, QUERY, 1)[0].find_elements(By.CSS_SELECTOR, ".hit")
        driver.refresh()  # same tab: the key is not asked again
        _until(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
        assert not driver.find_element(By.ID, "key-dialog").is_displayed()
        _setup(driver, ["bm25"])
        assert _run(driver, QUERY, 1)[0].find_elements(By.CSS_SELECTOR, ".hit")
        driver.execute_script("sessionStorage.clear()")
    assert not _console_errors(driver)


@pytest.mark.parametrize("width", [1280, 390])
def test_usable_at_wide_and_narrow_widths(page: WebDriver, width: int) -> None:
    page.set_window_size(width, 900)
    _setup(page, ["bm25", "bm25+overlap"])
    columns = _run(page, QUERY, 2)
    inner = page.execute_script("return window.innerWidth")
    scroll = page.execute_script("return document.documentElement.scrollWidth")
    assert scroll <= inner, f"horizontal overflow at {width}px: {scroll} > {inner}"
    for element_id in ("query", "run", "k", "top-n", "filters", "answer-button", "tab-eval"):
        element = page.find_element(By.ID, element_id)
        box = element.rect
        assert element.is_displayed() and box["x"] >= 0 and box["x"] + box["width"] <= inner, (
            element_id,
            box,
        )
    a, b = columns[0].rect, columns[1].rect
    if width >= 1000:
        assert a["y"] == b["y"] and a["x"] + a["width"] <= b["x"]  # side by side
    else:
        assert b["y"] >= a["y"] + a["height"]  # stacked
        assert a["width"] <= inner
        _shot(page, "playground-narrow.png", height=844)


def test_bad_input_gets_a_message_in_the_page(page: WebDriver, site: dict[str, Any]) -> None:
    message = page.find_element(By.ID, "message")
    box = page.find_element(By.ID, "query")
    _set(box, "")
    box.send_keys(Keys.ENTER)
    _until(page, lambda d: message.is_displayed())
    assert message.text == "Type a query first."
    _setup(page, ["bm25+nope", "bm25"])
    _run(page, QUERY, 2)
    assert "unknown spec 'bm25+nope'" in message.text and "--rerank nope" in message.text
    assert "unknown spec" in page.find_element(By.CSS_SELECTOR, "#col-0.failed").text
    _setup(page, ["bm25+broken"])
    _run(page, "Mugabe Zimbabwe opposition", 1)
    assert "server error: internal server error (HTTP 500)" in message.text
    _setup(page, ["bm25"], k=0)
    _set(box, QUERY)
    box.send_keys(Keys.ENTER)
    _until(page, lambda d: "K must be" in message.text)
    assert "Traceback" not in page.page_source
    # The failed requests above (404, 500) are the only console errors.
    errors = [e for e in _console_errors(page) if not _is_expected_http(e, (404, 500))]
    assert not errors, errors


def test_llm_down_gets_a_message_in_the_page(page: WebDriver, site: dict[str, Any]) -> None:
    # Last in the module: the loopback LLM stops for good.
    site["llm"].stop()
    _setup(page, ["bm25"])
    _run(page, QUERY, 1)
    page.find_element(By.ID, "answer-button").click()
    message = page.find_element(By.ID, "message")
    _until(page, lambda d: "cannot reach the LLM" in message.text)
    assert "(HTTP 502)" in message.text and "start the server" in message.text
    errors = [e for e in _console_errors(page) if not _is_expected_http(e, (502,))]
    assert not errors, errors


def _is_expected_http(entry: dict[str, Any], statuses: tuple[int, ...]) -> bool:
    text = entry.get("message", "")
    return entry.get("source") == "network" and any(f"status of {s} " in text for s in statuses)
