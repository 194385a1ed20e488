"""Software that drives an iogate through a :class:`~firmware.bus.Bus`: initialisation,
device directory, page tables, command and fault queues, and the generated C header."""
