"""gunicorn's settings for a Concord web node: the Dockerfile, docker compose and the benches
run `gunicorn -c config/gunicorn.py`, adding only what differs (`--bind`, `--access-logfile`).
"""

wsgi_app = "config.wsgi"
bind = "0.0.0.0:8000"
worker_class = "gthread"  # threads, so keep-alive connections wait in the poller, not a thread
workers = 4
threads = 8  # a streamed export holds its thread until the last row
keepalive = 30
# Django, every view and the libraries they import (pandas, scikit-learn, cleanlab) load once
# in the arbiter, which then forks the workers: otherwise each worker's first request pays
# 2.5 s of CPU (measured on the 2-core bench machine) and holds its caller that long.
preload_app = True
