"""Constants the tests share: the repository root, the test app's upload limit, tiny run options."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEST_UPLOAD_MB = 8.0
# Tiny runs: a few dozen examples, tiny images, few epochs (each a few seconds on 2 cores).
TINY_IMAGE_OPTIONS = '{"max_examples": 40, "image_size": 64, "seed": 1}'
TINY_TEXT_OPTIONS = '{"max_examples": 40, "seed": 1}'
