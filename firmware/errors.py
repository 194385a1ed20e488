"""Exceptions the driver raises when the IOMMU, or the memory it was given, says no.

Every error an IOMMU can report through its registers (RISC-V IOMMU spec "Command-queue CSR
(cqcsr)", "Fault queue CSR (fqcsr)") has its own type, so that a caller can tell a command the IOMMU
refused from a fence that never completed. All of them derive from :class:`IommuError`.
"""

__all__ = [
    "IommuError", "PollTimeout", "UnsupportedError", "OutOfMemory",
    "CommandQueueError", "CommandIllegal", "CommandMemoryFault", "CommandTimeout",
    "GuestAddressError",
]


class IommuError(Exception):
    """Base class of every error raised by :mod:`firmware`."""


class PollTimeout(IommuError, TimeoutError):
    """A bounded poll of a register or a memory word did not see the expected value.

    Attributes
    ----------
    what : str
        What was being waited for (for example ``"cqcsr.cqon == 1"``).
    polls : int
        How many reads were made before giving up.
    """

    def __init__(self, what, polls):
        super().__init__(f"timed out after {polls} polls waiting for {what}")
        self.what = what
        self.polls = polls


class UnsupportedError(IommuError):
    """The IOMMU lacks something the caller asked for (a mode, a version, a width)."""


class OutOfMemory(IommuError, MemoryError):
    """The page allocator has no free block of the requested size and alignment."""


class CommandQueueError(IommuError):
    """The command queue stopped on an error; ``cqh`` indexes the command.

    Spec "Command-queue CSR (cqcsr)".

    Attributes
    ----------
    index : int
        ``cqh`` when the error was seen: the command the IOMMU stopped at.
    command : int or None
        That command, as the 128-bit integer read back from the queue.
    """

    #: The ``cqcsr`` field that reports this error.
    field = None

    def __init__(self, index, command=None):
        text = f"command queue stopped with cqcsr.{self.field} at cqh={index}"
        if command is not None:
            text += f" (command {command:#034x})"
        super().__init__(text)
        self.index = index
        self.command = command


class CommandIllegal(CommandQueueError):
    """``cqcsr.cmd_ill``: a reserved encoding, a reserved bit set or an unsupported command."""
    field = "cmd_ill"


class CommandMemoryFault(CommandQueueError):
    """``cqcsr.cqmf``: a command fetch or an IOFENCE.C completion store faulted."""
    field = "cqmf"


class CommandTimeout(CommandQueueError):
    """``cqcsr.cmd_to``: an IOFENCE.C saw an earlier command time out."""
    field = "cmd_to"


class GuestAddressError(IommuError, LookupError):
    """A guest physical address has no second-stage mapping (or lacks the permission)."""
