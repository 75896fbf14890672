"""A hostile little world for the security catalogue: a corpus full of traps and an outside.

Every secret carries a marker (TOKEN_...) so a test can assert that no answer, listing or
search result ever contains one; the outside folder holds what must never be read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

SECRETS = {
    ".env": "API_KEY=TOKEN_ENV\n",
    ".env.local": "TOKEN_ENV_LOCAL=1\n",
    "sub/.env": "TOKEN_SUB_ENV=1\n",
    ".git/config": "[core]\n\tfsmonitor = TOKEN_GIT\n",
    ".git/HEAD": "ref: refs/heads/main TOKEN_GITHEAD\n",
    "node_modules/lib/x.js": "const TOKEN_NODE = 1;\nfunction leaked_symbol() {}\n",
    ".venv/lib/site.py": "TOKEN_VENV = 1\ndef leaked_symbol():\n    pass\n",
    "private/p.txt": "TOKEN_PEEKIGNORE\n",
    "sub/gen/g.py": "TOKEN_GITIGNORE = 1\n",
    "id_rsa": "-----BEGIN OPENSSH PRIVATE KEY----- TOKEN_KEY\n",
    "server.pem": "TOKEN_PEM\n",
    "tls/site.key": "TOKEN_DOTKEY\n",
    ".netrc": "machine x login y password TOKEN_NETRC\n",
    "credentials.json": '{"secret": "TOKEN_CREDS"}\n',
    ".aws/credentials": "aws_secret_access_key=TOKEN_AWS\n",
    ".npmrc": "//registry/:_authToken=TOKEN_NPM\n",
    "deploy/.pypirc": "password = TOKEN_PYPI\n",
    "infra/terraform.tfstate": '{"TOKEN_TFSTATE": 1}\n',
}
PUBLIC = {
    "a.py": "def visible():\n    return 'hello'\n",
    "sub/b.py": "import os\n\ndef helper():\n    return os.sep\n",
    "docs/guide.md": "# Guide\n\nSome words.\n",
    ".env.example": "API_KEY=changeme\n",
    "id_rsa.pub": "ssh-ed25519 AAAA public\n",
    ".gitignore": "*.log\n",
    ".peekignore": "private/\n",
    "sub/.gitignore": "gen/\n",
    "empty.py": "",
}
OUTSIDE = "TOKEN_OUTSIDE top secret\n"
MARK = "TOKEN_"


@dataclass(frozen=True)
class World:
    """The corpus root (real path), the outside folder and the outside secret file."""

    root: Path
    outside: Path
    secret: Path


def build_world(base: Path, max_file_bytes: int = 4096, outside_base: Path | None = None) -> World:
    """Write the corpus with its traps: symlinks out, loops, a FIFO, a big and a binary file."""
    outside = (outside_base or base) / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text(OUTSIDE)
    root = (base / "corpus").resolve()
    for rel, text in {**SECRETS, **PUBLIC}.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    links = {
        "out_link": secret, "outdir": outside, "etc_link": Path("/etc/passwd"),
        "rel_escape": Path("../outside/secret.txt"), "loop1": Path("loop2"),
        "loop2": Path("loop1"), "env_link": Path(".env"), "git_link": Path(".git/config"),
        "inside_link": Path("a.py"), "sub/up_link": Path("../a.py"), "root_link": Path("."),
        "abs_inside": root / "a.py", "sub/deep_escape": Path("../../outside/secret.txt"),
        "node_link": Path("node_modules/lib/x.js"), "dangling": Path("nowhere.py"),
    }
    for name, target in links.items():
        os.symlink(target, root / name)
    os.mkfifo(root / "pipe")
    (root / "big.txt").write_text("x" * (max_file_bytes + 1))
    (root / "blob.dat").write_bytes(b"\0\1\2TOKEN_BINARY")
    return World(root, outside, secret)


def leaked(text: object) -> list[str]:
    """Markers of secrets or outside content found in any text (empty when nothing leaked)."""
    return sorted(set(re.findall(r"TOKEN_[A-Z][A-Z_]*", str(text))))
