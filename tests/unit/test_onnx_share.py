"""Issue 39's pieces that need no model: the int8 sentence, the model card's sections, the Space's licence, and the offline push."""
from __future__ import annotations

import time

import pytest

from tl_ui.engine.inference.onnx_package import _hub_licence, card_section, int8_sentence


def test_int8_sentence_reads_like_the_issue():
    assert int8_sentence(4.0, 1.9, -0.005, [-0.021, 0.01]) == (
        "int8: 4.0× smaller, 1.9× faster here, accuracy −0.5 points (−2.1 to +1.0) on the test examples.")
    assert "about as fast" in int8_sentence(3.9, 1.0, 0.0, [-0.3, 0.3])
    assert "2.0× slower" in int8_sentence(3.9, 0.5, 0.0, [-0.3, 0.3])


def test_card_section_and_hub_licence():
    card = "# T\n\n## Intended use and limits\n\nDo not use it alone.\n\n## How to load it\ncode"
    assert card_section(card, "Intended use and limits") == "Do not use it alone."
    assert card_section(card, "Missing") == ""
    assert _hub_licence("Apache-2.0") == "apache-2.0"
    assert _hub_licence("BSD-3-Clause (torchvision weights; wheel MIT)") == "bsd-3-clause"
    assert _hub_licence("some custom terms") == "other"


def test_push_offline_says_so_in_a_sentence_without_trying(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE set: no connection is tried, the answer is one sentence; the token never appears in it."""
    from tl_ui.service import hub_push

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    monkeypatch.setattr(hub_push.socket, "create_connection", lambda *a, **k: pytest.fail("tried the network"))
    start = time.monotonic()
    with pytest.raises(hub_push.PushError) as caught:
        hub_push.push_folder(tmp_path, "me/model", space=True)
    assert time.monotonic() - start < 1
    assert "offline" in str(caught.value) and "hf_secret_value" not in str(caught.value)
    assert "\n" not in str(caught.value)
