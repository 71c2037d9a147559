"Shared test fixtures: the repository root and the team's real DICOM samples; the longest files first."
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / 'shared' / 'real_samples'
LONGEST = ('test_pipeline.py', 'test_distributed.py', 'test_notebooks.py')    # minutes each: whole runs, every notebook


def pytest_collection_modifyitems(items):
    "Start the longest files first, so that `make test`'s parallel workers (one file each at a time) finish together."
    rank = {name: i for i, name in enumerate(LONGEST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST)))


@pytest.fixture
def samples() -> Path:
    "The real RSNA and CQ500 samples in ../shared/real_samples; skips where they are absent."
    if not SAMPLES.is_dir():
        pytest.skip(f"real DICOM samples not found at {SAMPLES} (they are not redistributable; "
                    "these tests run on the team's machines)")
    return SAMPLES
