"""gunicorn's settings for the studio: `gunicorn -c deploy/gunicorn.conf.py` from the repository (what `make run`
starts, with --bind). Anything here can be overridden on the command line or in GUNICORN_CMD_ARGS.

Threaded workers (gthread). Each thread serves one request at a time, so a client that reads slowly (a video
being watched, a download on a slow link) holds one thread, not a whole process, and pages go on in the others.
The worker's main loop keeps telling the master it is alive whatever its threads do, so `timeout` never cuts a
long download: a sync worker (gunicorn's default) is busy for the whole transfer and is killed after `timeout`
with the video half sent, and two of them are tied up by two viewers. Media files are sent by the kernel
(sendfile): a thread waiting on a slow client uses no CPU.

Production:
- workers (STUDIO_WEB_WORKERS, default 2): one per core. Pages are short and mostly wait on the database, so
  more processes than cores buy nothing but memory (each holds a whole copy of the studio).
- threads (STUDIO_WEB_THREADS, default 16): how many requests at once per worker. Without a front server every
  video being watched holds one for as long as it downloads, so workers x threads must exceed the viewers at
  once plus the pages being asked for: 2 x 16 keeps pages under a second with 10 slow downloads (tested).
- behind nginx (deploy/nginx/) with STUDIO_MEDIA_HANDOFF=x-accel-redirect a video holds a thread only for the
  access check and nginx sends the bytes (and buffers pages for slow clients): threads then need only cover
  pages at once; one worker of two threads kept pages under a second beside 10 slow videos (tested).
- bind to loopback behind the front server, which terminates TLS (gunicorn here does not).
"""

from studio import settings

wsgi_app = "studio.wsgi:application"
bind = ["127.0.0.1:8000"]
worker_class = "gthread"
workers = settings.STUDIO_WEB_WORKERS
threads = settings.STUDIO_WEB_THREADS

# On SIGTERM requests in flight get this long before their worker is killed: `make run` stops everything
# within 10 s of Ctrl-C. A video cut short carries on with a Range request from where it stopped.
graceful_timeout = 5

# gunicorn's control socket is one path per user ($HOME/.gunicorn/gunicorn.ctl): two studios on one machine
# would fight over it, and the studio has no use for it.
control_socket_disable = True

# With STUDIO_LOG_FORMAT=json gunicorn's own lines (workers booting, exiting, timing out) are JSON objects like
# the studio's; gunicorn writes them through these loggers, to stderr as the studio does.
if settings.LOG_FORMAT == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "studio.core.logs.JsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }
