"Shared test fixtures: the repository root and the team's real DICOM samples."
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / 'shared' / 'real_samples'


@pytest.fixture
def samples() -> Path:
    "The real RSNA and CQ500 samples in ../shared/real_samples; skips where they are absent."
    if not SAMPLES.is_dir():
        pytest.skip(f"real DICOM samples not found at {SAMPLES} (they are not redistributable; "
                    "these tests run on the team's machines)")
    return SAMPLES
