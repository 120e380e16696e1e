"""The peers check is `make peers`, not pytest: its scripts need the private venv's libraries."""
collect_ignore = ["run.py", "clients.py", "tls.py"]
