"""Embeddings kept across runs (tl_ui/engine/probe/embedding_cache.py): keys, eviction, reuse by real runs."""
from __future__ import annotations

import os
import time

import pytest
import torch

from tl_ui.core.catalog import get_model
from tl_ui.core.config import RunConfig
from tl_ui.data import sample_dataset_path, stratified_subset
from tl_ui.engine import train_run
from tl_ui.engine.probe.embedding_cache import EmbeddingCache, feature_key, feature_settings
from tl_ui.engine.models.build import load_model
from tests.helpers.forward_counting import count_forward_examples

os.environ["HF_HUB_OFFLINE"] = "1"
DIGITS = str(sample_dataset_path("image"))
CLASSES = ["a", "b", "c"]


def image_key(size=64, window=None, device="cpu", **config):
    loaded = load_model(get_model("efficientnet_lite0"), CLASSES, image_size=size,
                        random_init=config.get("random_init", False))
    return feature_key(feature_settings(loaded, RunConfig(**config), window, device))


def test_keys_change_with_every_feature_setting_and_only_then():
    base = image_key()
    # settings the embeddings do not depend on: the same key
    assert image_key(epochs=3, learning_rate=0.1, batch_size=32, seed=5, class_weighted=True,
                     max_length=16, val_fraction=0.3) == base
    # each setting that changes them: a new key
    changed = [image_key(size=96), image_key(window="lung"), image_key(device="cuda"),
               image_key(random_init=True), image_key(random_init=True, seed=1)]
    assert len({base, *changed}) == 1 + len(changed)
    text = load_model(get_model("minilm_l6"), CLASSES)
    short, long = (feature_key(feature_settings(text, RunConfig(model_id="minilm_l6", max_length=n), None, "cpu"))
                   for n in (32, 64))
    same = feature_key(feature_settings(text, RunConfig(model_id="minilm_l6", max_length=32, seed=9), None, "cpu"))
    assert short != long and short == same and short != base
    # the mean-pooled sentence probe (issue 13) reads other features than BERT's [CLS] pooler
    from tl_ui.engine.models.sentence import to_sentence_classifier

    pooled = feature_key(feature_settings(to_sentence_classifier(text), RunConfig(model_id="minilm_l6", max_length=32),
                                          None, "cpu"))
    assert pooled != short


def _store(cache: EmbeddingCache, n_rows: int, tag: str):
    bound = cache.bind({"test": tag})
    return bound, bound.store([f"{tag}{i}" for i in range(n_rows)], torch.randn(n_rows, 256))


def test_eviction_keeps_the_cache_under_its_size_least_recently_used_first(tmp_path):
    one_shard = 100 * 256 * 4   # 100 rows of 256 floats
    cache = EmbeddingCache(tmp_path / "cache", max_bytes=int(3.5 * one_shard))
    shards = []
    for tag in "abc":
        shards.append(_store(cache, 100, tag)[1])
        time.sleep(0.02)
    assert len(cache.bind({"test": "a"}).lookup(["a0", "a99"])) == 2        # reading "a" makes it the most recently used
    time.sleep(0.02)
    _store(cache, 100, "d")
    assert cache.size_bytes() <= cache.max_bytes
    assert shards[0].exists() and not shards[1].exists() and shards[2].exists()   # "b" was the oldest unused
    for tag in "efg":
        _store(cache, 100, tag)
        assert cache.size_bytes() <= cache.max_bytes
    assert not (tmp_path / "cache" / feature_key({"test": "b"})).exists()       # emptied key folders go too
    assert len(cache.prune(max_age_s=0, now=time.time() + 1)) == 3 and cache.size_bytes() == 0


def _comparable(metrics: dict) -> dict:
    out = {k: v for k, v in metrics.items() if k != "train_seconds"}
    if "probe_fit" in out:   # the full-batch head's record (opt-in)
        out["probe_fit"] = {k: v for k, v in out["probe_fit"].items() if k != "fit_seconds"}
    return out


def test_second_probe_reuses_every_embedding_and_added_examples_only_embed_themselves(tmp_path, digits,
                                                                                      monkeypatch):
    # one precision throughout (as on CPUs without native bf16): on such CPUs the examples that choose
    # and report are embedded exactly, the training ones on the fast path (the next test)
    monkeypatch.setattr("tl_ui.engine.models.fast_path.cpu_has_native_bf16", lambda: False)
    seen = count_forward_examples(monkeypatch)
    cache = EmbeddingCache(tmp_path / "cache")
    config = RunConfig(data_path=DIGITS, strategy="linear_probe", image_size=64, seed=2)
    first_data = stratified_subset(digits, 50, 0)
    first = train_run(config, tmp_path / "first", dataset=first_data, embedding_cache=cache)
    assert first.status == "finished", first.message
    assert seen["examples"] == 50
    second = train_run(config, tmp_path / "second", dataset=first_data, embedding_cache=cache.record())
    assert second.status == "finished", second.message
    assert seen["examples"] == 50, "the second run computed embeddings again"
    assert _comparable(second.metrics) == _comparable(first.metrics)
    assert "Reusing 50 embeddings" in (tmp_path / "second" / "events.jsonl").read_text()

    # twenty more examples: only those go through the model
    items = set(first_data.items)
    more = [i for i, item in enumerate(digits.items) if item not in items][:20]
    keep = [digits.items.index(item) for item in first_data.items] + more
    grown = digits.subset(sorted(keep))
    third = train_run(config, tmp_path / "third", dataset=grown, embedding_cache=cache)
    assert third.status == "finished", third.message
    assert seen["examples"] == 70

    # another image size: other embeddings
    bigger = train_run(RunConfig(data_path=DIGITS, strategy="linear_probe", image_size=72, seed=2),
                       tmp_path / "fourth", dataset=first_data, embedding_cache=cache)
    assert bigger.status == "finished" and seen["examples"] == 120
    assert len(list((tmp_path / "cache").iterdir())) == 2


@pytest.mark.skipif(not __import__("tl_ui.engine.models.fast_path", fromlist=["x"]).cpu_has_native_bf16(),
                    reason="this CPU has no native bf16: every embedding is computed in full precision")
def test_a_probe_trains_on_fast_embeddings_and_chooses_and_reports_on_exact_ones(tmp_path, digits):
    """Where the CPU has native bf16, only the examples the head learns from take the bf16 path; those
    that choose and report are computed exactly as the exported model computes them."""
    from tl_ui.engine.probe.features import embed_sets

    cache = EmbeddingCache(tmp_path / "cache")
    data = stratified_subset(digits, 40, 0)
    config = RunConfig(data_path=DIGITS, strategy="linear_probe", image_size=64, seed=2, epochs=2)
    assert train_run(config, tmp_path / "run", dataset=data, embedding_cache=cache).status == "finished"
    loaded = load_model(get_model("efficientnet_lite0"), data.classes, image_size=64)
    fast, exact = (cache.bind(feature_settings(loaded, config, None, "cpu", full_precision=p)) for p in (False, True))
    assert fast.key != exact.key
    options = dict(batch_size=16, device=torch.device("cpu"), max_length=32, window=None, on_progress=lambda *a: None)
    plain = embed_sets(loaded, [data.items], full_precision=True, **options)[0]
    quick = embed_sets(loaded, [data.items], **options)[0]
    kept_exact, kept_fast = exact.lookup(exact.keys_for(data.items)), fast.lookup(fast.keys_for(data.items))
    assert kept_exact and kept_fast and len(kept_exact) + len(kept_fast) == len(data)
    for i, key in enumerate(exact.keys_for(data.items)):
        if key in kept_exact:   # full precision both ways; batches of another make-up may round the last bits
            assert (kept_exact[key] - plain[i]).abs().max() <= 1e-5 * plain[i].abs().max(), \
                (kept_exact[key] - plain[i]).abs().max()
    for i, key in enumerate(fast.keys_for(data.items)):
        if key in kept_fast:   # bf16 rounding through the whole backbone: ~5% of their length here
            assert torch.allclose(kept_fast[key], quick[i], atol=1e-6)
            assert 0 < (kept_fast[key] - plain[i]).norm() <= 0.1 * plain[i].norm()


def test_app_runs_share_the_owner_cache_and_try_it_keeps_the_model_loaded(tmp_path):
    """Through the service and its worker processes: the second probe on the same data reads the
    owner's kept embeddings; try-it loads the run's model once (in the inference worker, which counts
    its loads); the clean-up removes unread embeddings."""
    import json

    from tl_ui.service.lab import Lab
    from tl_ui.service.owners import Owner
    from tl_ui.core.settings import Settings

    lab = Lab(Settings(runs_dir=tmp_path / "runs"))
    owner = Owner("user", "iterator")

    def loads() -> int:
        return sum(worker["loads"] for worker in lab.inference.stats())

    try:
        outcome = lab.load_sample(owner, "image")
        options = {"max_examples": 40, "image_size": 64, "seed": 3, "strategy": "linear_probe"}
        jobs = []
        for _ in range(2):
            job = lab.start_run(owner, outcome.dataset, outcome.data_path, "efficientnet_lite0", options)
            jobs.append(lab.runner.wait(job.id, timeout=300))
            assert jobs[-1].state == "finished", jobs[-1].message
        cache_dir = lab.workspace.embeddings_dir(owner)
        assert EmbeddingCache(cache_dir).size_bytes() > 0
        assert "Reusing 40 embeddings" in (jobs[1].run_dir / "events.jsonl").read_text()
        metrics = [json.loads((j.run_dir / "metrics.json").read_text()) for j in jobs]
        assert metrics[0]["accuracy"] == metrics[1]["accuracy"]
        assert metrics[0]["confusion_matrix"] == metrics[1]["confusion_matrix"]

        image = outcome.dataset.items[0]
        answers = [lab.predict(owner, jobs[1].id, image=image) for _ in range(3)]
        assert answers[0] == answers[1] == answers[2] and loads() == 1
        lab.warm_predictor(owner, jobs[0].id)      # Results showing a run loads its model in the background
        deadline = time.time() + 60
        while loads() < 2 and time.time() < deadline:
            time.sleep(0.1)
        lab.predict(owner, jobs[0].id, image=image)
        assert loads() == 2
    finally:
        lab.close()
    lab.workspace.cleanup(session_ttl_s=3600, now=time.time() + 7200)
    assert EmbeddingCache(cache_dir).size_bytes() == 0
