import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one torch thread, then restore the previous setting.

    Many small tensor ops: on a shared 2-core machine thread hand-offs cost more than
    they save.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
