"""The job machinery: everything that runs in a process other than the web server's.

* `runner.py`: the fair FIFO queue of training runs and its caps.
* `executors/`: where a run trains (a worker process per run or a warm one, a Ray task, a thread for tests).
* `inference/`: the inference worker that holds the loaded models (try-it, `/predict`, explanations,
  mistake maps) and long requests with progress and stop (the model advisor; batch scoring
  next), with their caps and queue.
* `supervisor.py`: the one supervisor: every worker subprocess is started, watched, stopped and reaped there,
  and its end said in one plain sentence ("ran out of memory", "took too long", "crashed").
* `advisor_worker.py`, `shelf_facts_worker.py`: the model advisor and one model's parameter count, each in a
  capped process of its own.
* `caps.py`: what every worker process does first (environment, parent watch, priority, memory cap).

Importing this package imports neither torch nor ray.
"""
