"""The one way peek runs git: on an untrusted repository, with its config neutralized.

A corpus's `.git/config` and `.gitattributes` are input, not trust: `core.fsmonitor`, hooks,
pagers, external diff, textconv and clean/smudge filters could all run programs, and a plain
`git diff` refreshes (rewrites) `.git/index`. Every call here overrides those settings on the
command line, turns optional locks off (so git writes nothing into the corpus), ignores system
and global config, never prompts, and stops after a timeout.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

GIT_TIMEOUT_S = 30
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_NEUTRAL = (
    "core.fsmonitor=false", "core.hooksPath=/dev/null", "core.pager=cat", "diff.external=",
    "core.untrackedCache=false", "core.splitIndex=false", "gc.auto=0", "maintenance.auto=false",
    "core.sshCommand=", "core.askPass=", "credential.helper=", "protocol.allow=never",
    "core.gitProxy=", "diff.textconv=", "core.attributesFile=/dev/null", "submodule.recurse=false",
    "core.worktree=",
)  # fmt: skip
_FILTER_KEY = re.compile(r"^filter\.(.+)\.(?:clean|smudge|process|required)$")
_DIFF_DRIVER_KEY = re.compile(r"^diff\.(.+)\.(?:command|textconv)$")
_URL_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def is_git_tree(root: Path) -> bool:
    """Whether `root` is the top of a git work tree (has its own `.git`)."""
    return os.path.lexists(root / ".git")


def git_env(root: Path) -> dict[str, str]:
    """The environment for git: this repository only, no system/global config, no locks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({
        "GIT_DIR": str(root / ".git"), "GIT_WORK_TREE": str(root),
        "GIT_OPTIONAL_LOCKS": "0", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "PAGER": "cat", "GIT_ASKPASS": "",
        "SSH_ASKPASS": "", "GIT_ATTR_NOSYSTEM": "1", "GIT_ATTR_SOURCE": EMPTY_TREE,
        "GIT_NO_REPLACE_OBJECTS": "1", "LC_ALL": "C",
    })  # fmt: skip
    return env


def run_git(root: Path, *args: str, timeout: float = GIT_TIMEOUT_S) -> str | None:
    """Run one git command in `root` with the config neutralized; stdout, or None on failure."""
    argv = ["git", "--no-pager", *_overrides(root), *args]
    return _run(argv, root, timeout)


def _run(argv: list[str], root: Path, timeout: float) -> str | None:
    try:
        done = subprocess.run(
            argv, cwd=root, env=git_env(root), stdin=subprocess.DEVNULL, capture_output=True,
            timeout=timeout, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "surrogateescape")


def _overrides(root: Path) -> list[str]:
    """`-c` pairs that switch off every program the repository's own config could name."""
    pairs = list(_NEUTRAL)
    for key in _driver_keys(root):
        pairs.append(f"{key}=")
    return [arg for pair in pairs for arg in ("-c", pair)]


def _driver_keys(root: Path) -> list[str]:
    """Filter and diff-driver commands configured in the repository, to blank them out."""
    listing = _run(
        ["git", "--no-pager", "-c", "core.fsmonitor=false", "config", "--local", "--list",
         "--name-only"], root, 10,
    )
    if not listing:
        return []
    keys = []
    for name in listing.splitlines():
        if _FILTER_KEY.match(name) or _DIFF_DRIVER_KEY.match(name):
            keys.append(name)
    return sorted(set(keys))


def strip_credentials(url: str) -> str:
    """A remote URL without any user:password or token in it (`https://tok@host/r` loses `tok`)."""
    stripped = _URL_USERINFO.sub(r"\1", url, count=1)
    if stripped != url:
        return stripped
    user, at, rest = url.partition("@")
    if at and ":" in user and "/" not in user:  # scp-like user:secret@host:path
        return rest
    return url
