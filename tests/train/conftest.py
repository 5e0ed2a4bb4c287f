"""Fixtures shared by the training tests."""

import pytest


@pytest.fixture
def one_thread():
    """Single-threaded like the subprocesses the tests start (OMP_NUM_THREADS=1): the same float summation order."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
