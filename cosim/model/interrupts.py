"""IOMMU-generated MSIs in the model (reference N.5, decision 8 of issue 16).

Written from the spec ("Interrupt pending status register (ipsr)", "Interrupt-cause-to-vector
register (icvec)", "MSI configuration table (msi_cfg_tbl)"), not from the RTL:

* With ``fctl.WSI=0``, each 0->1 transition of ``ipsr.cip`` (``ipsr.fip``, ``ipsr.pmip``,
  ``ipsr.pip``) is one message to ``msi_cfg_tbl[icvec.civ]`` (``[icvec.fiv]``,
  ``[icvec.pmiv]``, ``[icvec.piv]``); ``pip`` rises only with ``Config.ats``. A ``pmip``
  whose rise the model cannot predict (an unknown counter's wrap) is taken from the target
  when ``ipsr`` is read (:meth:`~iogate.cosim.model.registers.RegisterFile.adopt`): that
  adopted 0->1 is the one message the model accepts for it. While the bit stays 1 nothing
  more is sent.
  A bit that rose while ``fctl.WSI=1`` is a wire, and sends nothing later.
* ``msi_vec_ctl.M=1``: the message is held, one per vector, and sent once when M goes 1->0
  (with the table's values then). Toggling M again sends nothing more (issue #402).
* The message is a 4-byte little-endian store of ``msi_data_x`` to ``ADDR << 2``. An access
  fault (or an address at or above ``2**PAS``, which the WARL ADDR cannot hold) is a fault
  record CAUSE 273, TTYP 0, ``iotval`` the address, everything else 0, whatever DTF says.

:attr:`MsiInterrupts.messages` lists every message sent, in order, faulted or not: the test
bench's interrupt monitor compares the RTL's MSI writes with it.
"""

from dataclasses import dataclass

from iogate.hdl import bits
from iogate.hdl.formats import Cause, Ttyp
from iogate.hdl.regs import ICVEC, IPSR

from iogate.cosim.model.memory import AccessFault

__all__ = ["Msi", "MsiInterrupts"]

#: ipsr bit -> the icvec field naming its vector. pmip is set only on an OF edge (decision 5
#: of issue 17 (HPM)), pip by the page-request queue (reference N.5): each 0->1 is one message.
_ROUTES = ((bits.mask(IPSR, "cip"), "civ"), (bits.mask(IPSR, "fip"), "fiv"),
           (bits.mask(IPSR, "pmip"), "pmiv"), (bits.mask(IPSR, "pip"), "piv"))


@dataclass(frozen=True)
class Msi:
    """One message: the entry, the byte address and the 32-bit data; ``faulted`` when the
    store was answered with an access fault (and a CAUSE 273 record was offered)."""
    vector: int
    address: int
    data: int
    faulted: bool = False


class MsiInterrupts:
    """The MSI generator over a :class:`~iogate.cosim.model.registers.RegisterFile`.

    Parameters
    ----------
    regs : RegisterFile
        Its ``on_ipsr_rise`` and ``on_unmask`` hooks are taken.
    store : callable
        ``store(address, data)``, raising :class:`AccessFault`.
    fault_queue : FaultQueue

    Attributes
    ----------
    messages : list of Msi
    pending : set of int
        Vectors holding a message under M=1.
    """

    def __init__(self, regs, store, fault_queue):
        self._regs = regs
        self._store = store
        self._fq = fault_queue
        self.messages = []
        self.pending = set()
        regs.on_ipsr_rise = self._rise
        regs.on_unmask = self._unmask

    def _rise(self, rose):
        regs = self._regs
        if regs.wsi:
            return
        for bit, field in _ROUTES:
            if rose & bit:
                vector = bits.get(ICVEC, regs.icvec, field)
                if regs.msi_entry(vector)[2]:
                    self.pending.add(vector)
                else:
                    self._send(vector)

    def _unmask(self, vector):
        if vector in self.pending:
            self.pending.discard(vector)
            self._send(vector)

    def _send(self, vector):
        address, value, _ = self._regs.msi_entry(vector)
        try:
            self._store(address, value.to_bytes(4, "little"))
        except AccessFault:
            self.messages.append(Msi(vector, address, value, True))
            self._fq.report_msi_fault(address)
        else:
            self.messages.append(Msi(vector, address, value))


assert Cause.IOMMU_MSI_WRITE_ACCESS_FAULT == 273 and Ttyp.NONE == 0
