"""`sojourn serve`: the pages where stakeholders act on their signed links; the Flask app lives in `engine.web.app`."""
