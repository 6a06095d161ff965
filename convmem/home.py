"""Where the local stack keeps its state: `.convmem/` at the project root (gitignored)."""

from pathlib import Path

STATE_DIR = ".convmem"
STACK_ENV = "stack.env"


def project_root(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` holding a `.convmem/` folder or the project's
    pyproject; the current directory when there is none (a fresh install elsewhere)."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / STATE_DIR).is_dir() or (candidate / "deploy" / "kafka" / "pom.xml").is_file():
            return candidate
    return here


def state_dir(start: Path | None = None) -> Path:
    return project_root(start) / STATE_DIR


def stack_env_file(start: Path | None = None) -> Path:
    return state_dir(start) / STACK_ENV
