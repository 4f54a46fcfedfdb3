"""Django: SESSION_ENGINE = "floor_rtt": floor.py's store plus one Redis
round trip per load and per save (see floor.py)."""

import floor


class SessionStore(floor.SessionStore):
    networked = True
