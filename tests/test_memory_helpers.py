"""Shared material for the memory tests: a small two-topic conversation and corpus builders."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from peek.retrieval.indexer import index_corpus
from peek.service import Peek

GARDEN = [
    ("Alice", "I planted tomatoes and basil in the community garden this weekend."),
    ("Bob", "Nice! Did the tomatoes get enough sun near the Riverside Greenhouse?"),
    ("Alice", "Yes, the greenhouse keeps them warm; the basil loves the compost too."),
    ("Bob", "I should start composting kitchen scraps for my own garden beds."),
    ("Alice", "Compost needs brown leaves and green scraps, turned every week."),
    ("Bob", "My garden beds are full of weeds, I will mulch them with straw."),
    ("Alice", "Straw mulch keeps the soil moist and the weeds down."),
    ("Bob", "Then I will plant peppers next to the tomatoes."),
]
TRAVEL = [
    ("Bob", "I booked a flight to Lisbon for the conference in October."),
    ("Alice", "Lisbon is lovely; take the tram to the castle and eat pastel de nata."),
    ("Bob", "The conference hotel is near the river, close to the tram line."),
    ("Alice", "Pack a raincoat, October in Lisbon can be rainy."),
    ("Bob", "My passport expires soon, I need to renew it before the flight."),
    ("Alice", "The passport office needs a photo and the old passport."),
    ("Bob", "I renewed the passport online and the flight leaves on Friday."),
    ("Alice", "Have a safe flight and send photos of the castle!"),
]


def conversation() -> list[dict[str, Any]]:
    """Two sessions on two topics, in the ingest contract."""
    turns = []
    for session, (topic, time) in enumerate(((GARDEN, "1 May 2024"), (TRAVEL, "9 Sep 2024")),
                                            start=1):
        for i, (speaker, text) in enumerate(topic, start=1):
            turns.append({"id": f"D{session}:{i}", "speaker": speaker, "text": text,
                          "time": time, "session": f"session_{session}"})
    return turns


def indexed(root: Path, home: Path) -> Peek:
    """The service for an indexed folder (no map bootstrap needed)."""
    service = Peek(root, home)
    index_corpus(service.db, service.root, service.settings.max_file_bytes)
    return service


def git_repo(root: Path, files: dict[str, str]) -> Path:
    """A real git repository with one commit holding `files`."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    git = ["git", "-c", "user.email=t@peek", "-c", "user.name=t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=root, check=True)
    return root


CODE = {
    "app/config.py": "DATABASE_URL = 'sqlite://'\n\n\ndef load_settings():\n"
                     "    return {'debug': False}\n",
    "app/server.py": "from app.config import load_settings\n\n\nclass Server:\n"
                     "    def start(self):\n        return load_settings()\n",
}


def trajectory(question: str = "Where is DATABASE_URL read?") -> dict[str, Any]:
    """A finished session that searched, read, cited and edited."""
    return {
        "question": question,
        "steps": [
            {"tool": "search", "args": {"query": "DATABASE_URL"}, "paths": ["app/config.py"],
             "ok": True},
            {"tool": "read_file", "args": {"path": "app/config.py"}, "paths": ["app/config.py"],
             "ok": True},
        ],
        "answer": "app/config.py defines DATABASE_URL and load_settings reads the settings.",
        "citations": [{"path": "app/config.py", "start_line": 4, "end_line": 5}],
        "outcome": {"edited_files": ["app/server.py"], "success": True},
    }
