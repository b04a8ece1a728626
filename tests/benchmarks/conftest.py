import pytest
import torch

_FIGURES = pytest.StashKey[list[tuple[str, dict]]]()


@pytest.fixture
def two_threads():
    """torch on 2 threads, the setting the authors' TensorFlow figures were measured with."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _keep_figures(request, benchmark):
    """Keeps each benchmark's extra_info (images/s, memory ratios) for the summary below."""
    yield
    if benchmark.extra_info:
        request.config.stash.setdefault(_FIGURES, []).append((request.node.name, dict(benchmark.extra_info)))


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    """pytest-benchmark's tables show times only; the figures the issues compare with peers are here."""
    figures = config.stash.get(_FIGURES, [])
    if not figures:
        return
    terminalreporter.section("benchmark figures")
    for name, info in figures:
        values = ", ".join(
            f"{key} {value:,.1f}" if isinstance(value, float) else f"{key} {value}"
            for key, value in info.items()
        )
        terminalreporter.write_line(f"{name}: {values}")
