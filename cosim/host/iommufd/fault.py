"""The iommufd fault object: page requests to user space, page responses back to the device.

Linux ``drivers/iommu/iommufd/eventq.c`` (``fault.c`` before 6.14) and
``drivers/iommu/io-pgfault.c``; the uapi is ``struct iommu_fault_alloc``,
``struct iommu_hwpt_pgfault`` and ``struct iommu_hwpt_page_response``
(``include/uapi/linux/iommufd.h``, :mod:`~iogate.cosim.host.iommufd.uapi`).

* ``IOMMU_FAULT_QUEUE_ALLOC`` makes a :class:`FaultQueue` and its fd; a HWPT allocated
  with ``IOMMU_HWPT_FAULT_ID_VALID`` and its ``fault_id`` sends the page requests of the
  devices attached to it there.
* A Page Request Group (PCIe; reference N.6.6: device, PASID, PRG index) is delivered whole,
  once its last request (L=1) has arrived (:class:`PendingGroups`, io-pgfault's partial
  list; an overflow of the page-request queue discards the partial groups, as
  ``iopf_queue_discard_partial``).
* ``read()``: a multiple of 40 bytes (else ``-ESPIPE``); whole groups only, oldest first,
  one ``struct iommu_hwpt_pgfault`` per page; the group that does not fit stays queued. Each
  group read gets a cookie, the lowest free from 1 (``xa_alloc``, ``XA_FLAGS_ALLOC1``),
  carried by every record of the group; the last carries ``IOMMU_PGFAULT_FLAGS_LAST_PAGE``.
* ``write()``: a multiple of 8 bytes (else ``-ESPIPE``); each response names a cookie read and
  not answered yet and a code ``IOMMUFD_PAGE_RESP_SUCCESS`` or ``_INVALID``, else ``-EINVAL``.
  Responses are taken in order up to the first bad one: the return is the bytes taken, or
  the errno if none was (a refused first response changes nothing). Each becomes one
  ``ATS.PRGR`` (PCIe Success / Invalid Request, reference N.6.4) through the driver.
* Groups still queued or unanswered when the fault object is destroyed, or when their
  device is detached from the HWPT, are answered Invalid Request
  (``iommufd_fault_destroy``, ``iommufd_auto_response_faults``).

The fault object knows neither the page-request queue nor its registers: the driver's
handler (:meth:`iogate.firmware.pq.PageRequestQueue.report`) hands records to the iommufd
context, which routes each completed group here with the callback that answers it.
"""

import dataclasses
import errno

from iogate.hdl.formats import PrgResponse

from iogate.cosim.host.iommufd.uapi import (
    HWPT_PAGE_RESPONSE,
    HWPT_PGFAULT,
    PageResponseCode,
    PgfaultFlag,
    PgfaultPerm,
)

__all__ = ["FaultGroup", "FaultQueue", "PendingGroups", "RESPONSE_CODE"]

#: iommufd's response codes as PCIe PRG Response Codes (PCIe 10.4.2.1, reference N.6.4).
RESPONSE_CODE = {
    PageResponseCode.SUCCESS: PrgResponse.SUCCESS,
    PageResponseCode.INVALID: PrgResponse.INVALID_REQUEST,
}

_COOKIE_LIMIT = (1 << 32) - 1     # xa_limit_32b


@dataclasses.dataclass
class FaultGroup:
    """One Page Request Group on its way to user space.

    Attributes
    ----------
    dev_id : int
        The iommufd device object the requests came from.
    requests : tuple of iogate.firmware.pq.PageRequest
        Oldest first; the last has ``last`` set.
    respond : callable
        ``respond(code)`` with a :class:`~iogate.hdl.formats.PrgResponse`: sends the
        group's PRG Response.
    cookie : int or None
        Set when the group is read.
    handle : int or None
        The attachment that took the group: ``None`` the device's own HWPT, else the
        PASID attached (a detach answers its groups).
    """

    dev_id: int
    requests: tuple
    respond: object
    cookie: int | None = None
    handle: int | None = None

    def records(self):
        """The ``struct iommu_hwpt_pgfault`` bytes of the group (one per request)."""
        out = []
        for i, req in enumerate(self.requests):
            flags = PgfaultFlag(0)
            if req.pasid is not None:
                flags |= PgfaultFlag.PASID_VALID
            if i == len(self.requests) - 1:
                flags |= PgfaultFlag.LAST_PAGE
            perm = ((PgfaultPerm.READ if req.r else 0) | (PgfaultPerm.WRITE if req.w else 0)
                    | (PgfaultPerm.EXEC if req.exec else 0)
                    | (PgfaultPerm.PRIV if req.priv else 0))
            out.append(HWPT_PGFAULT.pack(int(flags), self.dev_id, req.pasid or 0,
                                         req.prg_index, int(perm), 0, req.page << 12, 0,
                                         self.cookie))
        return b"".join(out)


class FaultQueue:
    """An ``IOMMUFD_OBJ_FAULT`` and the file behind its fd.

    Attributes
    ----------
    deliver : list of FaultGroup
        Groups not read yet, oldest first.
    response : dict of int to FaultGroup
        Groups read and not answered, by cookie.
    users : int
        HWPTs that send their faults here (the object is busy while any does).
    fd_open : bool
        The fd holds a reference too, until closed.
    """

    kind = "fault"

    def __init__(self, fd):
        self.fd = fd
        self.deliver = []
        self.response = {}
        self.users = 0
        self.fd_open = True

    def __repr__(self):
        return f"FaultQueue(fd={self.fd}, deliver={len(self.deliver)}, " \
               f"response={sorted(self.response)})"

    def add(self, group):
        """``iommufd_fault_iopf_handler``: queue a completed group for ``read()``."""
        self.deliver.append(group)

    def _cookie(self):
        value = 1
        while value in self.response:
            value += 1
        if value > _COOKIE_LIMIT:
            raise OverflowError("every cookie is in use")
        return value

    def read(self, count):
        """``read(fd, buf, count)``: the bytes read, or a negative errno.

        Raises
        ------
        TypeError
            If ``count`` is not an integer.
        """
        if not isinstance(count, int) or isinstance(count, bool):
            raise TypeError(f"count must be an integer, not {count!r}")
        if count < 0 or count % HWPT_PGFAULT.size:
            return -errno.ESPIPE
        out = []
        done = 0
        while self.deliver:
            group = self.deliver[0]
            size = len(group.requests) * HWPT_PGFAULT.size
            if done >= count or size > count - done:
                break
            group.cookie = self._cookie()
            self.response[group.cookie] = group
            del self.deliver[0]
            out.append(group.records())
            done += size
        return b"".join(out)

    def write(self, data):
        """``write(fd, buf, len(data))``: the bytes taken, or a negative errno if the first
        response was refused (then nothing changed)."""
        data = bytes(data)
        if len(data) % HWPT_PAGE_RESPONSE.size:
            return -errno.ESPIPE
        done = 0
        rc = 0
        while done < len(data):
            cookie, code = HWPT_PAGE_RESPONSE.unpack_from(data, done)
            if code not in (PageResponseCode.SUCCESS, PageResponseCode.INVALID):
                rc = -errno.EINVAL
                break
            group = self.response.pop(cookie, None)
            if group is None:
                rc = -errno.EINVAL
                break
            group.respond(RESPONSE_CODE[PageResponseCode(code)])
            done += HWPT_PAGE_RESPONSE.size
        return done if done else rc

    def auto_respond(self, match=lambda group: True):
        """Answer Invalid Request every queued or unanswered group ``match`` accepts
        (the device left the HWPT, or the object is destroyed)."""
        kept = []
        for group in self.deliver:
            if match(group):
                group.respond(PrgResponse.INVALID_REQUEST)
            else:
                kept.append(group)
        self.deliver = kept
        for cookie, group in sorted(self.response.items()):
            if match(group):
                del self.response[cookie]
                group.respond(PrgResponse.INVALID_REQUEST)

    def state(self):
        """A comparable snapshot: the queued groups and the unanswered cookies."""
        return (tuple((g.dev_id, g.requests) for g in self.deliver),
                tuple((c, g.dev_id, g.requests) for c, g in sorted(self.response.items())),
                self.users, self.fd_open)


class PendingGroups:
    """Requests of groups whose last request has not arrived, by (device_id, PASID, PRG
    index): io-pgfault's partial list (``report_partial_fault``)."""

    def __init__(self):
        self.partial = {}

    def add(self, request):
        """Keep ``request``; the whole group, oldest first, if it was the last one, else
        ``None``."""
        group = self.partial.setdefault(request.group, [])
        group.append(request)
        if not request.last:
            return None
        del self.partial[request.group]
        return tuple(group)

    def discard(self):
        """``iopf_queue_discard_partial``: after a queue overflow the partial groups will not
        complete (the IOMMU answered their lost last request itself, N.6.7)."""
        self.partial = {}
