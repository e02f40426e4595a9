"""What every layer shares, torch- and gradio-free: the run's configuration (config.py: RunConfig, the
one translator) and limits, the server's settings and logins, the model shelf (catalog.py), the run
folder (runfolder.py), the measured figures the pages quote, and the contracts' schema document."""
