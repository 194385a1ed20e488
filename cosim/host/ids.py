"""Allocators of small integer IDs: PSCIDs, GSCIDs, iommufd object IDs.

RISC-V IOMMU spec "Device-context fields" (``iohgatp``, ``ta``): a PSCID (20 bits) tags first-stage
IOTLB entries of one address space, a GSCID (16 bits) those of one VM. Two live address spaces must
not share a tag, and a tag may be handed out again only after every entry it tagged was invalidated
(the caller's job, before :meth:`IdAllocator.free`).
"""

__all__ = ["IdAllocator", "IdsExhausted"]


class IdsExhausted(Exception):
    """Every ID of the range is in use."""


class IdAllocator:
    """Free integers of ``[first, last]``, handed out round robin.

    Round robin rather than lowest-first, so that a freed tag is reused as late as
    possible: a missing invalidation then shows up as a stale answer in a test instead
    of hiding behind a tag that happens to be reused at once.

    Parameters
    ----------
    first, last : int
        The inclusive range.

    Raises
    ------
    ValueError
        If ``first > last``.
    """

    def __init__(self, first, last):
        if first > last:
            raise ValueError(f"first ({first}) must not exceed last ({last})")
        self.first = first
        self.last = last
        self._used = set()
        self._next = first

    def __contains__(self, value):
        return value in self._used

    def alloc(self):
        """A free ID, now in use.

        Raises
        ------
        IdsExhausted
        """
        span = self.last - self.first + 1
        if len(self._used) >= span:
            raise IdsExhausted(f"all IDs in [{self.first}, {self.last}] are in use")
        value = self._next
        while value in self._used:
            value = self.first + (value + 1 - self.first) % span
        self._used.add(value)
        self._next = self.first + (value + 1 - self.first) % span
        return value

    def free(self, value):
        """Return ``value`` to the pool.

        Raises
        ------
        ValueError
            If ``value`` is not in use.
        """
        if value not in self._used:
            raise ValueError(f"ID {value} is not in use")
        self._used.remove(value)
