"""tl_ui/jobs/supervisor.py: a worker's reply pipe, read by one thread and closed by another.

The number of a closed descriptor is the next pipe's: the pool's reader of one worker must never read, or
close, the pipe of the worker started after it (which lost its "ready" that way, or had its pipe closed
under its own reader, and was ended as if it had crashed)."""
from __future__ import annotations

import os
import threading
import time

from tl_ui.jobs.supervisor import WorkerProcess


def _reader(worker: WorkerProcess) -> tuple[threading.Thread, list]:
    got: list = []
    thread = threading.Thread(target=lambda: got.append(worker.read_reply(None)), daemon=True)
    thread.start()
    return thread, got


def test_a_reader_whose_pipe_is_closed_ends_and_leaves_the_next_pipe_alone():
    read_fd, write_fd = os.pipe()
    worker = WorkerProcess("inference", None, read_fd)
    thread, got = _reader(worker)
    time.sleep(0.2)   # it waits on the pipe
    worker.close_pipe()
    new_read, new_write = os.pipe()   # the next worker's pipe: the lowest free numbers
    try:
        assert new_read == read_fd
        os.write(new_write, b'{"ready": true}\n')
        thread.join(5)
        assert not thread.is_alive() and got == [None] and worker.at_eof
        assert os.read(new_read, 100) == b'{"ready": true}\n'   # still there for the new worker's reader
    finally:
        for fd in (write_fd, new_read, new_write):
            os.close(fd)


def test_a_pipe_closed_by_two_threads_at_once_is_closed_once():
    """`stop()` and the reader's `reap()` both close the pipe when the worker ends; the second close must not
    reach the pipe that took the number in between. Many rounds, since the threads' order is the scheduler's."""
    for _ in range(200):
        read_fd, write_fd = os.pipe()
        os.close(write_fd)
        worker = WorkerProcess("inference", None, read_fd)
        start = threading.Barrier(2)
        taken: list = []

        def stop_then_start_another():
            start.wait()
            worker.close_pipe()
            taken.append(os.pipe())

        def reap():
            start.wait()
            worker.close_pipe()

        threads = [threading.Thread(target=stop_then_start_another), threading.Thread(target=reap)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        new_read, new_write = taken[0]
        try:
            os.fstat(new_read)   # raises OSError (EBADF) if the second close took it
            os.fstat(new_write)
        finally:
            for fd in (new_read, new_write):
                try:
                    os.close(fd)
                except OSError:
                    pass
