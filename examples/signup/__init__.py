"""Sign-up: a form validated field by field on the server (``create_app``, ``app``)."""
