"""A user process's side of an ioctl: its argument buffer and its memory.

The kernel reaches a caller's memory only through ``copy_from_user``/``copy_to_user``,
which fail with ``-EFAULT`` on an address the process has not mapped, and pins the pages
behind a ``vaddr`` before it lets a device DMA to them. Here:

* an ioctl's struct argument is a ``bytearray``: reading or writing past its end is a
  fault (``-EFAULT``), as is passing anything else where a pointer is expected;
* the process's memory is a set of windows of system memory, mapped virtual == physical
  (so a test writes an invalidation array with the bus and passes its address); reading
  it, or pinning it for DMA, outside the windows is a fault.
"""

__all__ = ["UserFault", "ArgBuffer", "UserSpace", "USER_MEMORY"]

#: The default process memory, ``(first, last)`` inclusive, in system physical addresses.
USER_MEMORY = ((0x2_0000_0000, 0x2_FFFF_FFFF),)


class UserFault(Exception):
    """A user address the kernel could not read or write (``-EFAULT``)."""


class ArgBuffer:
    """The struct an ioctl's ``arg`` points to.

    Parameters
    ----------
    arg : object
        A ``bytearray`` is the struct; anything else is an address the model cannot
        dereference, so every access faults.
    """

    def __init__(self, arg):
        self.buf = arg if isinstance(arg, bytearray) else None

    def read(self, offset, length):
        """``copy_from_user`` of ``length`` bytes at ``offset``."""
        if self.buf is None or offset < 0 or offset + length > len(self.buf):
            raise UserFault(f"cannot read {length} bytes at +{offset}")
        return bytes(self.buf[offset:offset + length])

    def write(self, offset, data):
        """``copy_to_user`` of ``data`` at ``offset``."""
        if self.buf is None or offset < 0 or offset + len(data) > len(self.buf):
            raise UserFault(f"cannot write {len(data)} bytes at +{offset}")
        self.buf[offset:offset + len(data)] = data

    def read_u32(self, offset):
        """``get_user`` of a ``__u32``."""
        return int.from_bytes(self.read(offset, 4), "little")


class UserSpace:
    """The process's memory: windows of system memory, virtual == physical.

    Parameters
    ----------
    bus : iogate.firmware.bus.Bus
        Reaches system memory.
    windows : sequence of (int, int)
        Inclusive ``(first, last)`` ranges the process has mapped.
    """

    def __init__(self, bus, windows=USER_MEMORY):
        self.bus = bus
        self.windows = tuple((int(a), int(b)) for a, b in windows)

    def mapped(self, address, length):
        """``[address, address + length)`` lies inside one window (and is not NULL)."""
        if address <= 0 or length < 0:
            return False
        return any(a <= address and address + length - 1 <= b for a, b in self.windows)

    def read(self, address, length):
        """``copy_from_user`` from the process's memory."""
        if length == 0:
            return b""
        if not self.mapped(address, length):
            raise UserFault(f"{length} bytes at {address:#x} are not mapped")
        return self.bus.mem_read(address, length)

    def pin(self, vaddr, size):
        """The physical address behind ``[vaddr, vaddr + size)`` (``pin_user_pages``)."""
        if not self.mapped(vaddr, size):
            raise UserFault(f"{size:#x} bytes at {vaddr:#x} are not mapped")
        return vaddr
