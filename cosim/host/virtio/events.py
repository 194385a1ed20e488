"""Fault events for the eventq, made from the IOMMU's fault-queue records.

Virtio specification, "IOMMU device / Fault reporting"::

    struct virtio_iommu_fault {      // 24 bytes
      u8 reason; u8 reserved[3];     // @0
      le32 flags;                    // @4   F_READ, F_WRITE, F_ADDRESS
      le32 endpoint;                 // @8
      le32 reserved1;                // @12
      le64 address;                  // @16  valid iff F_ADDRESS
    };

The mapping from a RISC-V IOMMU fault record (spec "Fault/Event-Queue (FQ)") to a virtio fault
follows the project's design (``docs/design.md``, "Mapping the front-ends onto the hardware"): an
endpoint that is neither attached nor in bypass has ``DC.V=0``, so cause 258 ("DDT entry not valid")
is ``FAULT_R_DOMAIN``; a first-stage page fault (cause 12, 13, 15) is an unmapped address or a
missing permission, so ``FAULT_R_MAPPING``; anything else (an access fault on a table read, a
misconfigured context, data corruption...) is an internal error, ``FAULT_R_UNKNOWN``. The access
type comes from TTYP: a read-for-execute is a read (the spec has no execute flag). ``iotval`` is
the faulting IOVA for every transaction fault, so ``F_ADDRESS`` is set for all of them.
"""

import dataclasses
import struct

from iogate.hdl.formats import Cause, Ttyp

from iogate.cosim.host.virtio.abi import FAULT_SIZE, FaultFlag, FaultReason

__all__ = ["Fault", "from_record"]

_FAULT = struct.Struct("<B3xIIIQ")
assert _FAULT.size == FAULT_SIZE

_READ_TTYPS = {Ttyp.UNTRANSLATED_READ, Ttyp.UNTRANSLATED_EXEC, Ttyp.TRANSLATED_READ,
               Ttyp.TRANSLATED_EXEC, Ttyp.ATS_TRANSLATION_REQUEST}
_WRITE_TTYPS = {Ttyp.UNTRANSLATED_WRITE, Ttyp.TRANSLATED_WRITE}
_MAPPING_CAUSES = {Cause.READ_PAGE_FAULT, Cause.WRITE_PAGE_FAULT,
                   Cause.INSTRUCTION_PAGE_FAULT}


@dataclasses.dataclass(frozen=True)
class Fault:
    """One ``struct virtio_iommu_fault``; the device zeroes both reserved fields."""

    reason: int
    flags: int
    endpoint: int
    address: int = 0

    def encode(self):
        return _FAULT.pack(self.reason, self.flags, self.endpoint, 0, self.address)

    @classmethod
    def decode(cls, raw):
        """Read a record as a driver does; ``None`` if the driver MUST ignore it.

        The spec says the driver MUST ignore a record whose ``reserved`` is not zero
        (Linux checks ``head & 0xffffff00``) and MUST ignore ``reserved1``.
        """
        if len(raw) < FAULT_SIZE or any(raw[1:4]):
            return None
        reason, flags, endpoint, _, address = _FAULT.unpack_from(raw)
        return cls(reason, flags, endpoint, address)


def from_record(record):
    """The virtio fault for fault-queue record ``record``, or ``None``.

    Records not caused by an inbound transaction (TTYP 0) belong to no endpoint; the spec
    recommends DEVICE_NEEDS_RESET rather than an event for those, so none is made.

    Parameters
    ----------
    record : iogate.firmware.fq.FaultRecord
        Anything with ``cause``, ``ttyp``, ``did`` and ``iotval``.
    """
    if record.ttyp == Ttyp.NONE:
        return None
    if record.cause == Cause.DDT_ENTRY_NOT_VALID:
        reason = FaultReason.DOMAIN
    elif record.cause in _MAPPING_CAUSES:
        reason = FaultReason.MAPPING
    else:
        reason = FaultReason.UNKNOWN
    flags = FaultFlag.ADDRESS
    if record.ttyp in _READ_TTYPS:
        flags |= FaultFlag.READ
    elif record.ttyp in _WRITE_TTYPS:
        flags |= FaultFlag.WRITE
    return Fault(int(reason), int(flags), record.did, record.iotval)
