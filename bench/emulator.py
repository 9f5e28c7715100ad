"""The emulator for the benchmark, served with kept-alive connections.

moto's own server (werkzeug's) closes the connection after every answer, so each
call would pay a TCP connect that no production store costs; gunicorn keeps them
open. One process: moto's state lives in it.
"""

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

app = DomainDispatcherApplication(create_backend_app)
