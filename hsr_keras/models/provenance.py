"""Where a result came from: the code version and file checksums, for JSON records."""

import configparser
import hashlib
import importlib.metadata
import subprocess
from pathlib import Path


def sha256_of(path):
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def code_version():
    """hsr-keras version (installed metadata, else setup.cfg) and the git commit of the source tree."""
    root = Path(__file__).resolve().parents[1]
    try:
        version = importlib.metadata.version("hsr-keras")
    except importlib.metadata.PackageNotFoundError:
        parser = configparser.ConfigParser()
        parser.read(root / "setup.cfg")
        version = parser.get("metadata", "version", fallback="unknown")
    commit = dirty = None
    if (root / ".git").exists():
        try:
            commit = _git(root, "rev-parse", "HEAD")
            dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
        except (OSError, subprocess.SubprocessError):
            commit = dirty = None
    return {"package": "hsr-keras", "version": version, "git_commit": commit, "git_dirty": dirty}


def _git(root, *args):
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20, check=True)
    return result.stdout.strip()
