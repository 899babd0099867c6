"""Where a result came from: the code version (package version and git commit), for JSON records."""

import configparser
import importlib.metadata
import subprocess
from pathlib import Path


def code_version():
    """hsr-keras version (installed metadata, else setup.cfg) and the git commit of the source tree."""
    root = Path(__file__).resolve().parents[2]  # the checkout: hsr_keras/models/provenance.py
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
