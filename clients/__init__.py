"""Kiosk SDK, the ``saoy`` command line, and the kiosk simulator. Imports only the stubs."""
