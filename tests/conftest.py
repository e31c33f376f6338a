import pytest


@pytest.fixture
def out_dir(tmp_path):
    return tmp_path / "out"
