"""What the three stand-in servers share: the JSON store, the /sandbox/ health and request-count endpoints,
the command-line server loop and the git runner."""

from .git import GitError, run_git
from .introspection import RequestCounts, introspection_blueprint
from .serve import Server, on_shutdown, serve
from .store import DictStore, JsonStore

__all__ = [
    "DictStore",
    "GitError",
    "JsonStore",
    "RequestCounts",
    "Server",
    "introspection_blueprint",
    "on_shutdown",
    "run_git",
    "serve",
]
