"""Labelling (issue 41) through the service of a real server: labels given survive the server's restart,
the model's suggestions arrive from a worker, and the labelled set trains with its provenance in run.json."""
from __future__ import annotations

import json

from tl_ui.service.owners import Owner

OWNER = Owner("user", "ana")


def serve(settings):
    from tl_ui.app.server import start_in_thread
    from tl_ui.app.webapp import build_app

    return start_in_thread(build_app(settings), settings=settings)


def test_labels_survive_a_server_restart_and_carry_their_provenance_into_the_run(tmp_path):
    """Two server starts and one suggestion round in a worker (about a minute here)."""
    from tl_ui.core.settings import Settings

    settings = Settings(runs_dir=tmp_path / "runs", max_jobs=1)
    server = serve(settings)
    try:
        service = server.lab.labelling
        pool = service.sample_pool(OWNER, 30)
        session = service.start(OWNER, pool, pool.name, [str(d) for d in range(10)])
        assert len(session.inputs) == 30 and session.progress() == "0 labelled · 30 to go"
        service.keep_fresh(OWNER, session, wait=True)
        assert not session.error and len(session.queue) == 20
        assert all(s["guess"] is None for s in session.queue)          # nothing labelled: diversity alone
        truth = {}
        import zipfile
        from tl_ui.data import sample_dataset_path

        with zipfile.ZipFile(sample_dataset_path("image")) as z:
            truth = {n.split("/")[-1]: n.split("/")[1] for n in z.namelist() if n.count("/") == 2 and n[-1] != "/"}
        for _ in range(6):
            item = service.current(session)["item"]
            service.label(OWNER, session, item, truth[item.split("/")[-1]])
        service.label(OWNER, session, service.current(session)["item"], "")   # not sure
        assert session.progress() == "6 labelled · 23 to go · 1 set aside as not sure"
        before = session.store.given()
    finally:
        server.stop()

    server = serve(settings)   # the same runs folder, a new process state
    try:
        service = server.lab.labelling
        session = service.session(OWNER)
        assert session is not None and session.store.given() == before
        assert session.store.labels()[0].by == "ana"
        assert session.progress() == "6 labelled · 23 to go · 1 set aside as not sure"
        lines = (service.folder(OWNER) / "labels.csv").read_text().splitlines()
        assert lines[0] == "item,label,labelled_at,by" and len(lines) == 8
        assert service.export(session).read_text().splitlines()[1:] == [f"{k},{v}" for k, v in before.items()]

        # enough labels of two classes: the labelled set loads as data and a run records where it came from
        for name, label in truth.items():
            if name in set(session.names) - set(session.store.given()) - set(session.store.set_aside()):
                if sum(v == label for v in session.store.given().values()) < 3:
                    service.label(OWNER, session, name, label)
        path = service.training_file(session)
        outcome = server.lab.load_data(OWNER, path, path.name, copy=False)
        assert outcome.dataset is not None, outcome.error
        assert len(outcome.dataset) == len(session.store.given())
        job = server.lab.start_run(OWNER, outcome.dataset, outcome.data_path, "efficientnet_lite0",
                                   {"strategy": "linear_probe"})
        run_json = json.loads((job.run_dir / "run.json").read_text())
        provenance = run_json["extra"]["labels_provenance"]
        assert provenance["source"] == "labelled in Transfer Lab" and provenance["labelled_by"] == ["ana"]
        assert provenance["n_labels"] == len(session.store.given()) and provenance["n_not_sure"] == 1
        server.lab.stop_run(OWNER, job.id)
    finally:
        server.stop()


def test_the_api_suggests_through_the_same_verb(client_factory, tmp_path):
    """/suggest on 20 sample digits with 2 labels of two classes (a worker embeds them: about a minute here)."""
    import zipfile

    from gradio_client import handle_file
    from tl_ui.data import sample_dataset_path

    pool, truth = tmp_path / "pool.zip", {}
    with zipfile.ZipFile(sample_dataset_path("image")) as source, zipfile.ZipFile(pool, "w") as target:
        for name in [n for n in source.namelist() if n.count("/") == 2 and n.split("/")[1] in "01" and
                     not n.endswith("/")][:10] + \
                [n for n in source.namelist() if n.count("/") == 2 and n.split("/")[1] == "1"][:10]:
            target.writestr(name.split("/")[-1], source.read(name))
            truth[name.split("/")[-1]] = name.split("/")[1]
    zeros = [k for k, v in truth.items() if v == "0"][:2]
    ones = [k for k, v in truth.items() if v == "1"][:2]
    labels = tmp_path / "labels.csv"
    labels.write_text("item,label\n" + "".join(f"{k},{truth[k]}\n" for k in zeros + ones), encoding="utf-8")
    rows = client_factory().predict(handle_file(str(pool)), handle_file(str(labels)), "", "", 5, api_name="/suggest")
    assert len(rows) == 5 and not {r["item"] for r in rows} & set(zeros + ones)
    assert {r["item"] for r in rows} <= set(truth) and all(r["guess"] in ("0", "1") and r["reason"] for r in rows)
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
