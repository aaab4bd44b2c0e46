"""gunicorn settings of a SiliconHealth node; the number of workers comes from the tier profile."""

import os

from siliconhealth.tiers import active_profile

bind = os.environ.get("SILICONHEALTH_WEB_BIND", "127.0.0.1:8000")  # nginx in front terminates TLS
workers = active_profile().web_workers
timeout = 60
graceful_timeout = 30
# Recycle workers now and then: a long-lived process on a 1 GB board should not creep upward.
max_requests = 1000
max_requests_jitter = 100
forwarded_allow_ips = "127.0.0.1,::1"
accesslog = "-"
# The default line plus the time spent in the worker (%(M)s, milliseconds) and the worker pid: a slow page
# then shows whether the application or the wait for a free worker took the time.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms pid=%(p)s'
errorlog = "-"
capture_output = True
