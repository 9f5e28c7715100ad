"""Objects in any S3-protocol store (AWS S3, Ceph RGW, MinIO, the emulator): bounded
reads, copies and deletes pinned to a version, multipart uploads, and part plans."""

from broker.storage.objects import COPY_CONCURRENCY, Storage, StoredObject
from broker.storage.streams import HashedStream
from broker.storage.values import Copied, Delivery, ObjectChanged, ObjectInfo

__all__ = ["COPY_CONCURRENCY", "Copied", "Delivery", "HashedStream", "ObjectChanged",
           "ObjectInfo", "Storage", "StoredObject"]
