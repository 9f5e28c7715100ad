"""The development stack: the embedded emulator, the local runner and its worker process."""
