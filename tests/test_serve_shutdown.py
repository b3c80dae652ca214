"""SIGTERM to a real server process: in-flight requests finish, then it exits cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("uvicorn")

from serve_fakes import free_port

TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def _wait_ready(proc: subprocess.Popen[bytes], url: str, seconds: float = 30) -> None:
    """Poll `/ready` until it answers 200; fail if the server exits or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)


def test_sigterm_lets_in_flight_request_finish() -> None:
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(TESTS), env.get("PYTHONPATH", "")])
    env["SERVE_FAKE_DELAY_S"] = "1.0"
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "serve_fakes:make_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url)

        results: dict[str, httpx.Response] = {}

        def post(key: str, documents: list[str]) -> threading.Thread:
            def call() -> None:
                results[key] = httpx.post(
                    f"{url}/v2/rerank",
                    json={"model": "overlap", "query": "cat", "documents": documents},
                    timeout=30,
                )

            thread = threading.Thread(target=call)
            thread.start()
            return thread

        def wait_for(line: str) -> None:
            deadline = time.monotonic() + 30  # generous: CI machines are shared
            while line not in httpx.get(f"{url}/metrics", timeout=2).text:
                assert time.monotonic() < deadline, f"never saw {line!r}"
                time.sleep(0.05)

        running = post("running", ["a cat", "a dog"])
        # The queue-wait stage is observed when a batch starts, before the slow model runs.
        wait_for('shortlist_stage_duration_seconds_count{stage="queue"} 1.0')
        queued = post("queued", ["a dog", "the cat"])
        wait_for('shortlist_queue_depth{model="overlap"} 1.0')
        proc.send_signal(signal.SIGTERM)
        running.join(timeout=30)
        queued.join(timeout=30)
        assert results["running"].status_code == 200
        assert [r["index"] for r in results["running"].json()["results"]] == [0, 1]
        assert results["queued"].status_code == 200
        assert [r["index"] for r in results["queued"].json()["results"]] == [1, 0]
        # uvicorn re-raises the signal after a clean shutdown.
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert proc.stdout is not None
        assert b"Traceback" not in proc.stdout.read()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/health", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_request_running_past_the_shutdown_deadline_gets_503_with_retry_after() -> None:
    """Issue #15: uvicorn cancels what runs past --timeout-graceful-shutdown; the client
    used to get a bare 500, now a retryable 503."""
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(TESTS), env.get("PYTHONPATH", "")])
    env["SERVE_FAKE_DELAY_S"] = "4.0"
    cmd = [
        sys.executable, "-m", "uvicorn", "--factory", "serve_fakes:make_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        "--timeout-graceful-shutdown", "1",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url)
        result: list[httpx.Response] = []
        body = {"model": "overlap", "query": "cat", "documents": ["a cat"]}
        thread = threading.Thread(
            target=lambda: result.append(httpx.post(f"{url}/v2/rerank", json=body, timeout=30))
        )
        thread.start()
        deadline = time.monotonic() + 30  # generous: CI machines are shared
        while 'stage_duration_seconds_count{stage="queue"} 1.0' not in httpx.get(
            f"{url}/metrics", timeout=2
        ).text:
            assert time.monotonic() < deadline, "the request never reached the model"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        thread.join(timeout=30)
        assert result, "no response"
        assert result[0].status_code == 503, result[0].text
        assert result[0].headers["retry-after"] == "1"
        assert "shutting down" in result[0].json()["message"]
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert proc.stdout is not None
        assert b"Traceback" not in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
