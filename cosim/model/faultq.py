"""The fault/event queue: writing fault records (RISC-V IOMMU spec "Fault/Event-Queue (FQ)";
``fqb``, ``fqh``, ``fqt``, ``fqcsr``).

A record is stored at ``fqb.PPN*4096 + fqt*32`` and ``fqt`` advances, unless the queue is
off, or ``fqof``/``fqmf`` is set (the record and all later ones are discarded until
software clears the bit), or the queue is full (``fqt == fqh-1``: ``fqof`` is set and the
record discarded), or the store faults (``fqmf`` is set and the record discarded). A new
record, or a set error bit, sets ``ipsr.fip`` when ``fqcsr.fie`` is 1.

Two sources report: the translations (:meth:`FaultQueue.report`, after the caller's DTF
rule) and the MSI generator (:meth:`FaultQueue.report_msi_fault`: CAUSE 273, TTYP 0,
``iotval`` the MSI's address; no device context, so DTF does not apply; reference N.5).
"""

from iogate.hdl import bits
from iogate.hdl.formats import FAULT_RECORD, FQ_RECORD_SIZE, Cause, Ttyp
from iogate.hdl.regs import FQCSR, IPSR

from iogate.cosim.model.memory import AccessFault

__all__ = ["FaultQueue"]

_FQON = bits.mask(FQCSR, "fqon")
_FQOF = bits.mask(FQCSR, "fqof")
_FQMF = bits.mask(FQCSR, "fqmf")
_FIE = bits.mask(FQCSR, "fie")
_FIP = bits.mask(IPSR, "fip")


class FaultQueue:
    """Fault-record producer over a :class:`~iogate.cosim.model.registers.RegisterFile`.

    Parameters
    ----------
    regs : RegisterFile
    store : callable
        ``store(address, data)``: writes system memory, raising :class:`AccessFault`
        (also beyond ``capabilities.PAS``).

    Attributes
    ----------
    written, dropped : int
        Records stored, and records discarded (queue off, full or in error).
    """

    def __init__(self, regs, store):
        self._regs = regs
        self._store = store
        self.written = 0
        self.dropped = 0

    def report_msi_fault(self, address):
        """Queue the record of an IOMMU-generated MSI whose store faulted (CAUSE 273, TTYP
        0, DID/PV/PID/PRIV 0, ``iotval`` = ``address``, ``iotval2`` 0); returns True if
        stored."""
        return self.report(Cause.IOMMU_MSI_WRITE_ACCESS_FAULT, Ttyp.NONE, 0, address)

    def report(self, cause, ttyp, did, iotval, iotval2=0, pv=0, pid=0, priv=0):
        """Queue one record; returns True if it was stored."""
        regs = self._regs
        if not regs.fqcsr & _FQON or regs.fqcsr & (_FQOF | _FQMF):
            self.dropped += 1
            return False
        n = regs.queue_entries(regs.fqb)
        if regs.fqt == (regs.fqh - 1) % n:
            regs.fqcsr |= _FQOF
            self.dropped += 1
            regs.update_ipsr()
            return False
        if not ttyp:
            # DID, PV, PID and PRIV are 0 when TTYP is 0 (spec "Fault/Event-Queue (FQ)").
            did = pv = pid = priv = 0
        elif not pv:
            pid = priv = 0
        record = bits.pack(FAULT_RECORD, cause=cause, pid=pid, pv=pv, priv=priv, ttyp=ttyp,
                           did=did, iotval=iotval, iotval2=iotval2)
        address = regs.queue_base(regs.fqb) + regs.fqt * FQ_RECORD_SIZE
        try:
            # Four little-endian doublewords (fctl.BE=0).
            self._store(address, record.to_bytes(FQ_RECORD_SIZE, "little"))
        except AccessFault:
            regs.fqcsr |= _FQMF
            self.dropped += 1
            regs.update_ipsr()
            return False
        regs.fqt = (regs.fqt + 1) % n
        self.written += 1
        if regs.fqcsr & _FIE:
            regs.ipsr |= _FIP
        return True
