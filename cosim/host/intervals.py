"""A set of disjoint IOVA areas, each made by one map call, with the no-split rule.

Page tables carry no record of which map request made which PTE, yet virtio-iommu
("a mapping is the region created by one MAP request"; an UNMAP that would split one
fails), VFIO type1 v2 (an unmap must not bisect a mapping) and iommufd all decide on those
boundaries. This module keeps them: sorted, disjoint, inclusive ``[start, end]`` areas,
each with a payload, and answers the questions those interfaces ask.
"""

import bisect
import dataclasses

__all__ = ["Area", "IntervalMap"]


@dataclasses.dataclass(frozen=True)
class Area:
    """One mapping: input addresses ``[start, end]`` (inclusive) and what it carries."""

    start: int
    end: int
    value: object = None

    @property
    def size(self):
        return self.end - self.start + 1


class IntervalMap:
    """Disjoint inclusive areas, sorted by start."""

    def __init__(self):
        self._starts = []
        self._areas = []

    def __len__(self):
        return len(self._areas)

    def __iter__(self):
        return iter(list(self._areas))

    def __eq__(self, other):
        return isinstance(other, IntervalMap) and self._areas == other._areas

    def copy(self):
        new = IntervalMap()
        new._starts = list(self._starts)
        new._areas = list(self._areas)
        return new

    def overlapping(self, start, end):
        """The areas sharing at least one address with ``[start, end]``, in order."""
        if end < start:
            return []
        i = bisect.bisect_right(self._starts, end)
        out = []
        while i > 0 and self._areas[i - 1].end >= start:
            out.append(self._areas[i - 1])
            i -= 1
        return out[::-1]

    def find(self, address):
        """The area holding ``address``, or ``None``."""
        found = self.overlapping(address, address)
        return found[0] if found else None

    def add(self, start, end, value=None):
        """Insert ``[start, end]``.

        Raises
        ------
        ValueError
            If ``end < start`` or the area overlaps one already present.
        """
        if end < start:
            raise ValueError(f"an area needs start <= end, not [{start:#x}, {end:#x}]")
        if self.overlapping(start, end):
            raise ValueError(f"[{start:#x}, {end:#x}] overlaps an existing area")
        area = Area(start, end, value)
        i = bisect.bisect_left(self._starts, start)
        self._starts.insert(i, start)
        self._areas.insert(i, area)
        return area

    def remove(self, area):
        """Remove ``area`` (as returned by :meth:`add` or a lookup)."""
        i = bisect.bisect_left(self._starts, area.start)
        if i == len(self._areas) or self._areas[i] != area:
            raise ValueError(f"no area [{area.start:#x}, {area.end:#x}]")
        del self._starts[i]
        del self._areas[i]

    def split_by(self, start, end):
        """The areas that ``[start, end]`` covers only in part (an unmap would split them)."""
        return [a for a in self.overlapping(start, end) if a.start < start or a.end > end]

    def covered(self, start, end):
        """The areas wholly inside ``[start, end]``."""
        return [a for a in self.overlapping(start, end) if start <= a.start and a.end <= end]
