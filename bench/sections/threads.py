"""7. torch.set_num_threads(1) vs (2) for probe embedding and fine-tuning steps, and the image forward
pass at several batch sizes. Rounds alternate which setting goes first; throughput is from the median
round, with the spread of the per-round speed-ups."""
from __future__ import annotations

import statistics

from bench.data import default_batch, image_tensor, load, sample_dataset
from bench.harness import Clock, alternating, log, paired_ratios, rnd, summary


def run(cfg: dict) -> dict:
    import torch

    default = torch.get_num_threads()
    out: dict = {"torch_default": default, "estimator": "median of rounds; rounds alternate 1-2 / 2-1"}
    try:
        for modality in cfg["models"]:
            out[modality] = _model(modality, cfg, default)
    finally:
        torch.set_num_threads(default)
    return out


def _batches(modality: str, loaded, ds, cfg: dict):
    import torch

    items, targets = ds.items[: cfg["embed_n"]], ds.targets[: cfg["embed_n"]]
    bs = default_batch()
    if modality == "image":
        x = image_tensor(loaded, items)
        embed = [{"pixel_values": x[i:i + bs]} for i in range(0, len(x), bs)]
        train = [({"pixel_values": x[i:i + bs]}, torch.as_tensor(targets[i:i + bs])) for i in range(0, cfg["train_n"], bs)]
        return embed, train, x, len(items)
    tok = loaded.tokenizer

    def enc(s):
        return dict(tok(list(s), truncation=True, max_length=128, padding=True, return_tensors="pt"))

    embed = [enc(items[i:i + bs]) for i in range(0, len(items), bs)]
    train = [(enc(items[i:i + bs]), torch.as_tensor(targets[i:i + bs])) for i in range(0, cfg["train_n"], bs)]
    return embed, train, None, len(items)


def _model(modality: str, cfg: dict, default_threads: int) -> dict:
    import torch
    from torch import nn

    from tl_ui.engine.models.inputs import forward_logits

    ds = sample_dataset(modality)
    loaded = load(modality, ds.classes)
    model = loaded.model
    embed_batches, train_batches, x, n_embed = _batches(modality, loaded, ds, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def embed() -> Clock:
        model.eval()
        with Clock() as c, torch.no_grad():
            for b in embed_batches:
                forward_logits(model, b)
        return c

    def train() -> Clock:
        model.train()
        with Clock() as c:
            for b, y in train_batches:
                nn.functional.cross_entropy(forward_logits(model, b), y).backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
        return c

    embed(), train()  # warm-up
    times: dict = {1: {"embed": [], "train": []}, 2: {"embed": [], "train": []}}
    for order in alternating(cfg["rounds"], 1, 2):
        for t in order:
            torch.set_num_threads(t)
            times[t]["embed"].append(embed())
            times[t]["train"].append(train())
    torch.set_num_threads(default_threads)
    res = {}
    for what, n_items in (("embed", n_embed), ("train", cfg["train_n"])):
        w1, w2 = ([c.wall for c in times[t][what]] for t in (1, 2))
        c1, c2 = ([c.cpu for c in times[t][what]] for t in (1, 2))
        res[what] = {
            "items": n_items, "batch_size": default_batch(),
            "1_thread_wall_s": summary(w1), "2_threads_wall_s": summary(w2),
            "1_thread_cpu_s": rnd(statistics.median(c1)), "2_threads_cpu_s": rnd(statistics.median(c2)),
            "per_s_1_thread": rnd(n_items / statistics.median(w1), 1),
            "per_s_2_threads": rnd(n_items / statistics.median(w2), 1),
            "speedup_2_over_1": paired_ratios(w1, w2, 2),
            # CPU seconds spent per item: above 1x the second thread burns CPU waiting (spinning)
            "cpu_cost_2_over_1": paired_ratios(c2, c1, 2),
        }
        log(f"threads {modality} {what}: 1 thread {res[what]['per_s_1_thread']}/s, 2 threads "
            f"{res[what]['per_s_2_threads']}/s, CPU per item x{res[what]['cpu_cost_2_over_1']['median']} with 2")
    if modality == "image":
        res["embedding_batch_size"] = _batch_sizes(model, x[:32], cfg["rounds"] + 1)
    return res


def _batch_sizes(model, x, rounds: int) -> dict:
    """Eval-mode forward throughput over the same 32 images at several batch sizes (default threads)."""
    import torch

    model.eval()
    sizes = [4, 8, 32]
    times: dict = {b: [] for b in sizes}
    with torch.no_grad():
        for r in range(rounds):
            for b in (sizes if r % 2 == 0 else sizes[::-1]):
                with Clock() as c:
                    for i in range(0, len(x), b):
                        model(x[i:i + b])
                times[b].append(c)
    res = {f"batch_{b}": {"images_per_s": rnd(len(x) / statistics.median(c.wall for c in times[b]), 1),
                          "images_per_s_spread": summary((len(x) / c.wall for c in times[b]), 1),
                          "cpu_s_per_image": rnd(statistics.median(c.cpu for c in times[b]) / len(x), 4)}
           for b in sizes}
    best = max(sizes, key=lambda b: res[f"batch_{b}"]["images_per_s"])
    res["best"] = best
    res["speedup_best_over_32"] = rnd(res[f"batch_{best}"]["images_per_s"] / res["batch_32"]["images_per_s"], 2)
    log("embedding batch: " + ", ".join(f"{b}: {res[f'batch_{b}']['images_per_s']} img/s" for b in sizes))
    return res
