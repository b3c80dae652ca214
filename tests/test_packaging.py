"""What `pip install shortlist` brings, read from pyproject.toml, README.md and .ci/run."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _project() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_gensim_is_the_datasets_extra_not_a_core_dependency() -> None:
    project = _project()
    extras = project["optional-dependencies"]
    assert "gensim" not in _names(project["dependencies"])
    assert "gensim" in _names(extras["datasets"])
    dev_extras = {e for r in extras["dev"] for e in re.findall(r"shortlist\[([^\]]+)\]", r)}
    assert "datasets" in {e.strip() for group in dev_extras for e in group.split(",")}


def test_the_default_encoder_backend_is_a_core_dependency() -> None:
    from shortlist.retrieve.encoder_backends import DEFAULT_MODEL_BACKEND

    project = _project()
    core = _names(project["dependencies"])
    assert DEFAULT_MODEL_BACKEND == "openvino-int8"
    assert {"openvino", "nncf"} <= core
    # The extra stays, an alias of what is now core, for `pip install shortlist[openvino]`.
    openvino_extra = project["optional-dependencies"]["openvino"]
    assert _names(openvino_extra) == {"openvino", "nncf"}
    assert set(openvino_extra) <= set(project["dependencies"])


def test_readme_first_command_installs_what_the_demo_needs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```bash\n(.*?)\n```", readme.split("## Setup", 1)[1], re.S)
    assert first is not None
    command = first.group(1)
    assert '-e ".[datasets]"' in command and command.endswith("shortlist demo")


def test_ci_installs_the_dev_extra() -> None:
    assert '-e ".[dev]"' in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_ci_installs_the_clients_the_server_is_tested_against() -> None:
    extras = _project()["optional-dependencies"]
    dev_extras = {e for r in extras["dev"] for e in re.findall(r"shortlist\[([^\]]+)\]", r)}
    assert "compat" in {e.strip() for group in dev_extras for e in group.split(",")}
    assert _names(extras["compat"]) >= {
        "cohere",
        "langchain-cohere",
        "langchain-classic",
        "llama-index-postprocessor-cohere-rerank",
        "llama-index-postprocessor-tei-rerank",
    }
