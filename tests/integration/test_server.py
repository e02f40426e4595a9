"""Shared-server behaviour (issue 6): fair queue, isolation, upload limits, crash safety, auth."""
import json
import urllib.parse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file

from tests.helpers.common import REPO, TEST_UPLOAD_MB, TINY_IMAGE_OPTIONS, TINY_TEXT_OPTIONS


def new_client(url, **kwargs):
    kwargs.setdefault("verbose", False)
    return Client(url, analytics_enabled=False, **kwargs)


# -- four clients, one job at a time ------------------------------------------------------------
CLIENT_PLANS = [
    ("efficientnet_lite0", TINY_IMAGE_OPTIONS, [str(d) for d in range(10)]),
    ("minilm_l6", TINY_TEXT_OPTIONS, ["fresh", "rotten"]),
    ("efficientnet_lite0", TINY_IMAGE_OPTIONS.replace('"seed": 1', '"seed": 2'), [str(d) for d in range(10)]),
    ("minilm_l6", TINY_TEXT_OPTIONS.replace('"seed": 1', '"seed": 2'), ["fresh", "rotten"]),
]


@pytest.fixture(scope="module")
def four_runs(launched_app, launched_server):
    assert launched_server.lab.settings.max_jobs == 1
    clients = [new_client(launched_app) for _ in CLIENT_PLANS]
    jobs, statuses = [], [[] for _ in CLIENT_PLANS]
    for i, (client, (model_id, options, _)) in enumerate(zip(clients, CLIENT_PLANS)):
        job = client.submit(model_id, None, "linear_probe", 2, options, api_name="/train")
        # wait until the server has queued this job, so submission order is known
        deadline = time.time() + 60
        while not job.outputs() and time.time() < deadline:
            time.sleep(0.05)
        assert job.outputs(), f"client {i} got no answer"
        jobs.append(job)

    # everything else stays responsive while a job trains and others wait
    t0 = time.time()
    assert clients[0].predict(api_name="/runs") is not None
    assert httpx.get(launched_app + "healthz", timeout=10).json()["waiting"] >= 1
    assert time.time() - t0 < 10.0

    def collect(i, job):
        statuses[i].extend(out[0] for out in job)

    readers = [threading.Thread(target=collect, args=(i, j)) for i, j in enumerate(jobs)]
    for t in readers:
        t.start()
    for t in readers:
        t.join(300)
    results = [job.result(timeout=300) for job in jobs]
    return clients, results, statuses


def test_four_clients_finish_in_queue_order(four_runs):
    clients, results, statuses = four_runs
    metrics = [r[1] for r in results]
    assert [m["state"] for m in metrics] == ["finished"] * 4, [m.get("message") for m in metrics]
    seqs = [m["seq"] for m in metrics]
    assert seqs == sorted(seqs)
    for earlier, later in zip(metrics, metrics[1:]):
        assert later["started"] >= earlier["ended"] - 1e-3  # one at a time, in submission order
    # the waiting ones were told their place in the queue, and it moved on by itself
    all_statuses = [s for client_statuses in statuses for s in client_statuses]
    assert any("Waiting in queue: position 2" in s or "Waiting in queue: position 3" in s for s in all_statuses)
    assert all(s[-1].startswith("Finished") for s in statuses)


def test_each_client_gets_its_own_result(four_runs):
    clients, results, _ = four_runs
    for client, (status, metrics, run_id), (model_id, options, classes) in zip(clients, results, CLIENT_PLANS):
        assert metrics["classes"] == classes
        assert metrics["model_id"] == model_id
        mine = client.predict(api_name="/runs")
        assert [r["run_id"] for r in mine] == [run_id]  # sees its own run and nobody else's


# -- isolation of files ---------------------------------------------------------------------------
def test_private_files_need_a_valid_signed_link_or_their_owner(four_runs, launched_app, launched_server):
    """Capability links: the page's link works without cookies (an embedded Space has none) until it
    expires; an altered, expired or other owner's link, and every unsigned path, answer 404."""
    import shutil

    clients, results, _ = four_runs
    owner_client, run_id = clients[1], results[1][2]
    raw = new_client(launched_app, download_files=False)
    raw.cookies = dict(owner_client.cookies)  # the same session as the owner, but without downloading
    url = raw.predict(run_id, "model", api_name="/download")["url"]
    assert "/gradio_api/file=" in url and "tl_private" in url

    assert httpx.get(url, timeout=60).content[:2] == b"PK"                    # no cookie at all: the link works
    lab = launched_server.lab
    path = Path(urllib.parse.unquote(url.split("file=", 1)[1]))
    owner_hash, capability = path.parts[path.parts.index("tl_private") + 1:][:2]
    other_hash = lab.identity.owner(_Req(clients[2].cookies)).hash
    assert other_hash != owner_hash
    for changed in (url.replace(owner_hash, other_hash),                          # another owner's folder
                    url.replace(capability, capability[:-1] + ("A" if capability[-1] != "A" else "B")),
                    url.replace(capability, "cache")):                             # unsigned folder
        assert httpx.get(changed, timeout=30).status_code == 404, changed   # a stranger: no cookie
    expired = lab.identity.capability_folder(owner_hash, ttl_s=-60)
    stale = Path(str(path).replace(capability, expired))
    stale.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, stale)
    assert httpx.get(url.replace(capability, expired), timeout=30).status_code == 404
    # an unsigned path of the owner's folder is served to the owner's session only
    cached = url.replace(capability, "cache").rsplit("/", 2)[0] + "/" + path.name
    assert httpx.get(cached, cookies=owner_client.cookies, timeout=30).status_code == 200
    assert httpx.get(cached, cookies={"tl_sid": "guessed-session-id-0000"}, timeout=30).status_code == 404
    assert httpx.get(cached.replace("tl_private", "tl%5Fprivate"), timeout=30).status_code == 404

    # the runs folder itself is never served, not even to its owner
    weights = next(Path(lab.settings.runs_dir).rglob(f"{run_id}/model/*.safetensors"))   # any export's weights
    r = httpx.get(f"{launched_app}gradio_api/file={weights}", cookies=owner_client.cookies, timeout=30)
    assert r.status_code in (403, 404)


class _Req:
    def __init__(self, cookies):
        self.cookies, self.username, self.session_hash = dict(cookies), None, None


# -- upload limits ----------------------------------------------------------------------------------
def test_oversize_upload_is_refused_with_a_clear_message(launched_app, tmp_path):
    big = tmp_path / "big.zip"
    big.write_bytes(os.urandom(int((TEST_UPLOAD_MB + 1) * 1024 * 1024)))
    r = httpx.post(f"{launched_app}gradio_api/upload", files={"files": ("big.zip", big.read_bytes())},
                   timeout=60)
    assert r.status_code == 413
    assert "maximum allowed size" in r.text
    client = new_client(launched_app)
    with pytest.raises(Exception, match="(?i)size"):
        client.predict("efficientnet_lite0", handle_file(str(big)), "linear_probe", 1, "", api_name="/train")


def test_size_is_checked_before_unpacking(launched_server, tmp_path):
    from tl_ui.service.owners import Owner

    ctx = launched_server.lab
    owner = Owner("session", "sid-size-check-test")
    big = tmp_path / "photos.zip"
    big.write_bytes(b"\0" * (ctx.settings.max_upload_bytes + 1))
    outcome = ctx.load_data(owner, big, "photos.zip")
    assert outcome.dataset is None
    assert "accepts uploads up to 8.0 MB" in outcome.error
    assert not (Path(ctx.workspace.root) / owner.key / "uploads").exists() or \
        not any((Path(ctx.workspace.root) / owner.key / "uploads").iterdir())


# -- crash safety, restart, auth ------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc=None, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(url + "healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(url)


@pytest.fixture(scope="module")
def killed_server_runs(tmp_path_factory):
    """A real `python app.py` with login; alice finishes one run, starts a long one, and the server
    is killed (SIGKILL) mid-training."""
    runs_dir = tmp_path_factory.mktemp("killed-runs")
    port = _free_port()
    env = {**os.environ, "TL_AUTH": "alice:wonderland,bob:builder", "TL_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--port", str(port), "--runs-dir", str(runs_dir)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_http(url, proc)
        alice = new_client(url, auth=("alice", "wonderland"))
        _, done_metrics, done_id = alice.predict("minilm_l6", None, "linear_probe", 2, TINY_TEXT_OPTIONS,
                                                 api_name="/train")
        assert done_metrics["state"] == "finished"
        job = alice.submit("efficientnet_lite0", None, "partial", 200, '{"max_examples": 60, "image_size": 64}',
                           api_name="/train")
        long_id = None
        for status, _, rid in job:
            long_id = rid
            if status.startswith("Epoch"):
                break
        assert long_id
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    return runs_dir, done_id, long_id


def test_killed_run_leaves_no_half_written_export(killed_server_runs):
    runs_dir, done_id, long_id = killed_server_runs
    long_dir = next(runs_dir.glob(f"*/runs/{long_id}"))
    status = json.loads((long_dir / "status.json").read_text())
    assert status["state"] == "running"  # nobody got to say otherwise
    assert not (long_dir / "model").exists()
    done_dir = next(runs_dir.glob(f"*/runs/{done_id}"))
    assert (done_dir / "model" / "transfer_lab.json").exists()  # the finished run is complete (every export)


def test_restart_marks_interrupted_and_users_keep_their_runs(killed_server_runs):
    from tl_ui.app.server import start_in_thread
    from tl_ui.app.webapp import build_app
    from tl_ui.core.settings import Settings

    runs_dir, done_id, long_id = killed_server_runs
    long_dir = next(runs_dir.glob(f"*/runs/{long_id}"))
    partial = long_dir / ".model.partial-deadbeef"  # as if the kill had hit during the export
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half")

    settings = Settings(runs_dir=runs_dir, auth=(("alice", "wonderland"), ("bob", "builder")), offline=True)
    server = start_in_thread(build_app(settings), settings=settings)
    try:
        status = json.loads((long_dir / "status.json").read_text())
        assert status["state"] == "interrupted" and "server stopped" in status["message"]
        assert not partial.exists()

        alice = new_client(server.url, auth=("alice", "wonderland"))
        runs = {r["run_id"]: r for r in alice.predict(api_name="/runs")}
        assert runs[done_id]["state"] == "finished" and runs[done_id]["has_model"]
        assert runs[long_id]["state"] == "interrupted"
        zip_path = alice.predict(done_id, "model", api_name="/download")
        assert Path(zip_path).stat().st_size > 1000
        answer = alice.predict(done_id, None, "Dull and far too long.", api_name="/predict")
        assert set(answer["probabilities"]) == {"fresh", "rotten"}

        bob = new_client(server.url, auth=("bob", "builder"))
        assert bob.predict(api_name="/runs") == []

        # auth blocks anonymous access
        assert httpx.get(server.url + "config", timeout=10).status_code == 401
        assert httpx.post(server.url + "gradio_api/queue/join", json={}, timeout=10).status_code == 401
        with pytest.raises(Exception):
            new_client(server.url)
        with pytest.raises(Exception):
            new_client(server.url, auth=("alice", "wrong password"))
    finally:
        server.stop()


# -- working folders: owners, clean-up, private paths ------------------------------------------
def test_owner_folders_and_scheduled_cleanup(tmp_path):
    from tl_ui.service.owners import Owner
    from tl_ui.service.private_files import PrivateFiles
    from tl_ui.service.workspace import Workspace

    ws = Workspace(tmp_path / "runs")
    alice, anon, busy = Owner("user", "alice"), Owner("session", "sid-abc"), Owner("session", "sid-busy")
    assert alice.key != anon.key and alice.hash != anon.hash
    assert "sid-abc" not in anon.key  # the cookie itself never becomes a folder name
    for owner in (alice, anon, busy):
        (ws.runs_dir(owner) / "r1").mkdir()
        ws.uploads_dir(owner)
    old = time.time() - 3 * 24 * 3600
    for path in (tmp_path / "runs").rglob("*"):
        os.utime(path, (old, old))
    for owner in (alice, anon, busy):
        os.utime(tmp_path / "runs" / owner.key, (old, old))

    removed = ws.cleanup(session_ttl_s=24 * 3600, active_owner_keys={busy.key})
    assert not (tmp_path / "runs" / anon.key).exists()          # idle anonymous session: gone
    assert (tmp_path / "runs" / busy.key).exists()              # a job is still going: kept
    assert (tmp_path / "runs" / alice.key / "runs" / "r1").exists()  # users keep their runs...
    assert not any((tmp_path / "runs" / alice.key / "uploads").iterdir())  # ...but old uploads go
    assert removed

    private = PrivateFiles(tmp_path / "cache")
    f = private.new_folder(alice, "x")
    os.utime(f, (old, old))
    assert private.cleanup(24 * 3600) == 1 and not f.exists()


def test_private_path_parts():
    from tl_ui.service.private_files import private_path_parts

    def private_path_owner(path):
        parts = private_path_parts(path)
        return None if parts is None else (parts[0] if parts else "")

    assert private_path_owner("/tmp/gradio/abc/model.zip") is None
    assert private_path_owner("/tmp/gradio/tl_private/0123abcd/run-x/model.zip") == "0123abcd"
    assert private_path_owner("/tmp/gradio/x/../tl_private/ffff/a.png") == "ffff"
    assert private_path_owner("/tmp/gradio/tl_private") == ""
    assert private_path_owner("/tmp/gradio/abc/tl_private.zip") is None


def test_recovery_marks_interrupted_and_removes_partial_exports(tmp_path):
    from tl_ui.service.owners import Owner
    from tl_ui.service.workspace import Workspace

    ws = Workspace(tmp_path)
    run = ws.runs_dir(Owner("user", "carol")) / "20260101-000000-aaaaaa"
    (run / ".model.partial-1234").mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"state": "running", "started": 1.0}))
    done = run.parent / "20260101-000000-bbbbbb"
    done.mkdir()
    (done / "status.json").write_text(json.dumps({"state": "finished", "started": 2.0}))
    assert ws.recover_interrupted() == [run]
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
    assert not (run / ".model.partial-1234").exists()
    assert json.loads((done / "status.json").read_text())["state"] == "finished"
    assert [i.state for i in ws.list_runs(Owner("user", "carol"))] == ["finished", "interrupted"]
