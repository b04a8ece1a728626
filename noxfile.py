"""Sessions: tests, lint, bench, smoke. `nox -s lint tests` is what CI runs (.ci/run).

PyTorch is installed first as the CPU build 2.13.0 (`pip install torch==2.13.0`), so that the package's
torch range is already satisfied and pip never pulls a multi-GB CUDA build.
"""

import nox

nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["lint", "tests"]

TORCH = "torch==2.13.0"


def _install(session: nox.Session, extras: str = "") -> None:
    session.install(TORCH)
    session.install("-e", f".{extras}")


@nox.session
def tests(session: nox.Session) -> None:
    """The correctness suite (benchmarks excluded)."""
    _install(session, "[test]")
    session.run("pytest", "tests", "--ignore=tests/benchmarks", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def bench(session: nox.Session) -> None:
    """pytest-benchmark comparisons, each a ratio within one run."""
    _install(session, "[test]")
    session.run(
        "pytest", "tests/benchmarks", "--benchmark-only", "--benchmark-group-by=group", *session.posargs
    )


@nox.session
def smoke(session: nox.Session) -> None:
    """The main job at the smoke budget on the built-in synthetic data."""
    _install(session)
    session.run(
        "adbench",
        "run",
        "--methods",
        "l2ae",
        "--all-categories",
        "--budget",
        "smoke",
        "--out",
        str(session.create_tmp()),
        *session.posargs,
    )
