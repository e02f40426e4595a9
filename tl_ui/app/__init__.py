"""The web process: webapp.py builds the Gradio page from tl_ui/ui and the service, server.py serves it
(logins, cookies, private files); `python app.py` at the repository root starts it."""
