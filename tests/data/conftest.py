"""Session fixtures: the image folders and their RecordIO packing are written once."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.helpers import write_image_folders


@pytest.fixture(scope="session")
def image_folders(tmp_path_factory) -> Path:
    return write_image_folders(tmp_path_factory.mktemp("folders"))


@pytest.fixture(scope="session")
def packed(tmp_path_factory, image_folders) -> Path:
    """image_folders packed at their own size (original bytes), into a separate folder."""
    from bench.data.recordio import pack_image_folder
    out = tmp_path_factory.mktemp("rec")
    counts = pack_image_folder(image_folders, out, resize=None)
    assert counts == {"train": 12, "val": 10}
    return out
