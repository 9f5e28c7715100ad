"""The Flask extension: `from broker.flask import UploadBroker`, then
`UploadBroker(app, owner=...)`, or `UploadBroker(owner=...)` and `init_app(app)`."""

from broker.web.extension import UploadBroker, settings_from

__all__ = ["UploadBroker", "settings_from"]
