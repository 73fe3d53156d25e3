"""``lrfer serve``: the monitoring service. Cameras in, mood timelines and alerts out.

One process runs the camera workers, the recorder that writes to the database, the alert engine,
the HTTP API and the dashboard (``lrfer worker`` runs the same camera workers on another machine
and pushes to it). The pieces, in the order data flows through them:

- ``config.py``: the TOML file, validated (``ServeConfig``); ``records.py``: what flows between the pieces.
- ``geometry.py``: privacy masks and zones; ``aggregate.py``: faces per frame -> per-track time buckets.
- ``camera.py``: one worker per camera (read, sample, mask, recognise, aggregate, reconnect).
- ``alerts.py``: the rules that turn buckets into alerts; ``notify.py``: webhooks and MQTT.
- ``store.py`` (+ ``schema.py``, ``migrations/``): the database; ``recorder.py``: the one writer.
- ``auth.py``, ``events.py``, ``app.py`` and ``api_*.py``: the HTTP side; ``dashboard/``: the pages.
- ``service.py``: starts and stops them all; ``remote.py``: a worker's push to a distant server.
"""
