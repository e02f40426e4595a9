"""The command line (`python -m tl_ui`, `transfer-lab`): main.py parses; one module per verb family
(train.py, data.py, explain.py, advise.py), each calling the service or the engine's public API."""
