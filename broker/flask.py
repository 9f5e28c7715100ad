"""The Flask extension: `from broker.flask import UploadBroker`, then
`UploadBroker(app, owner=...)`, or `UploadBroker(owner=...)` and `init_app(app)`; and
`upload_settled`, the signal an app hears each verdict by (BROKER_APP_SIGNAL)."""

from broker.web.extension import UploadBroker, settings_from, upload_settled

__all__ = ["UploadBroker", "settings_from", "upload_settled"]
