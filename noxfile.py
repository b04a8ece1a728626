"""Sessions: tests, lint, typecheck, gate, bench, smoke, slow. `nox -s lint typecheck tests gate` is what CI
runs (.ci/run).

Every session but lint runs in one shared environment, .nox/shared-torch: torch is about 1.6 GB, and a
virtualenv of its own per session installed it once per session (3.3 GB for tests and gate alone). It is
made with the Python that runs nox and reinstalled only when pyproject.toml changes; adbench is installed
editable, so code changes need no reinstall. PyTorch is installed as the CPU build 2.13.0
(`pip install torch==2.13.0`) together with the package, so that the package's torch range is already
satisfied and pip never pulls a multi-GB CUDA build.
"""

import hashlib
import shutil
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests", "gate"]

TORCH = "torch==2.13.0"
GATE_METHODS = (
    "l2ae,ssimae,cbigan,egbad,anogan,fanogan,fanogan-iterative,ganomaly,skipganomaly,draem,dsr,utad"
)
GATE_BASELINE = "reports/baselines/smoke-synthetic.json"
# The gate's seeded smoke training gives the same numbers on x86-64 CPUs of one vendor only with portable
# kernels (adbench/machine/kernels.py): with AVX2 forced alone, a baseline made on an AMD EPYC failed on an
# Intel Xeon (26 metrics dropped by more than 0.02). Across vendors even they differ, so the baseline file
# keeps one per CPU vendor; `nox -s gate -- --update` rewrites this machine's vendor's.
PORTABLE_KERNELS = {"ADBENCH_PORTABLE_KERNELS": "1"}


SHARED_ENV = Path(".nox/shared-torch")
_INSTALLED = SHARED_ENV / "adbench-installed.txt"  # what was installed, to skip an unchanged reinstall


def _shared_env(session: nox.Session) -> Path:
    """The bin folder of the shared environment, made and (re)installed where needed."""
    scripts = SHARED_ENV / "bin"
    if not (scripts / "python").exists():
        session.run(sys.executable, "-m", "venv", str(SHARED_ENV), external=True)
    pyproject = hashlib.sha256(Path("pyproject.toml").read_bytes()).hexdigest()
    wanted = f"{TORCH} -e .[test], pyproject.toml {pyproject}"
    if not _INSTALLED.exists() or _INSTALLED.read_text() != wanted:
        _INSTALLED.unlink(missing_ok=True)  # an interrupted install is redone next time
        session.run(str(scripts / "python"), "-m", "pip", "install", TORCH, "-e", ".[test]", external=True)
        _INSTALLED.write_text(wanted)
    return scripts


def _run_shared(session: nox.Session, program: str, *args: str, env: dict[str, str] | None = None) -> None:
    session.run(str(_shared_env(session) / program), *args, env=env, external=True)


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """The correctness suite (benchmarks excluded)."""
    _run_shared(
        session,
        "pytest",
        "tests",
        "--ignore=tests/benchmarks",
        "-m",
        "not slow",
        "-p",
        "no:cacheprovider",
        *session.posargs,
    )


@nox.session(venv_backend="none")
def slow(session: nox.Session) -> None:
    """Checks that train at the default budget (about 90 minutes on 2 CPU cores); not part of CI."""
    _run_shared(session, "pytest", "tests", "-m", "slow", "-s", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(venv_backend="none")
def typecheck(session: nox.Session) -> None:
    """mypy over adbench/ and methods/ (pyproject's [tool.mypy]), with torch's and numpy's own hints."""
    _run_shared(session, "mypy")


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """pytest-benchmark comparisons, each a ratio within one run."""
    _run_shared(
        session,
        "pytest",
        "tests/benchmarks",
        "--benchmark-only",
        "--benchmark-group-by=group",
        *session.posargs,
    )


@nox.session(venv_backend="none")
def smoke(session: nox.Session) -> None:
    """The main job at the smoke budget on the built-in synthetic data."""
    _run_shared(
        session,
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


@nox.session(venv_backend="none")
def gate(session: nox.Session) -> None:
    """Every method's smoke grid on the synthetic data, against the committed baseline (exit 1 on a drop).

    `nox -s gate -- --update` rewrites the baseline for this machine's CPU vendor from this run instead.
    """
    out = Path(session.create_tmp())
    shutil.rmtree(out / "gate", ignore_errors=True)  # nox keeps its tmp folder between invocations
    _run_shared(
        session,
        "adbench",
        "run",
        *("--methods", GATE_METHODS, "--all-categories", "--budget", "smoke", "--repeats", "1"),
        *("--out", str(out), "--name", "gate"),
        env=PORTABLE_KERNELS,
    )
    compare = ("compare", str(out / "gate"), "--baseline", GATE_BASELINE)
    _run_shared(session, "adbench", *compare, *session.posargs)
