"""Integration tests: they train real models, start real servers, workers or Ray. Each is marked
`integration` (and `slow` where a file says so) and has a five-minute limit unless it declares another
(`@pytest.mark.timeout(...)`, with the reason in its docstring); tests/conftest.py applies both."""
