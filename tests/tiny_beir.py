"""A tiny BEIR-layout collection for tune and eval tests (written, not shipped)."""

from __future__ import annotations

import json
from pathlib import Path

TOPICS = {
    "logs": "rotate log files logrotate compress daily weekly",
    "net": "network interface ip address dhcp static route",
    "disk": "disk partition mount filesystem ext4 fstab",
    "pkg": "install package apt dpkg repository upgrade",
    "user": "add user account password group sudo",
    "time": "clock time zone ntp date synchronise",
}


def write_tiny_beir(root: Path) -> Path:
    """A small BEIR collection: 3 documents per topic, 2 judged queries per topic."""
    root.mkdir(parents=True)
    docs, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for t, (topic, words) in enumerate(TOPICS.items()):
        w = words.split()
        for j in range(3):
            text = " ".join(w[(j + i) % len(w)] for i in range(4 + j)) + f" note {topic} {j}"
            docs.append({"_id": f"{topic}-{j}", "title": "", "text": text})
        for j in range(2):
            qid = f"q-{topic}-{j}"
            queries.append({"_id": qid, "text": f"{w[j]} {w[j + 2]} {w[-1 - t % 2]}"})
            qrels.append(f"{qid}\t{topic}-{j}\t1")
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    return root
