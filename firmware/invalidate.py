"""The spec's invalidation recipes: which commands follow which change.

RISC-V IOMMU spec, "Guidelines for invalidations" (chapter "Software guidelines"). Each
function returns the commands (128-bit integers, see :mod:`iogate.firmware.commands`) that make
the IOMMU drop what a change may have left stale; the caller submits them and then an
``IOFENCE.C``. The tests decide on the *old* values of a changed entry, as the spec says.
"""

from iogate.hdl import bits
from iogate.hdl.formats import IOHGATP, IOSATP, TA, TC, IohgatpMode, IosatpMode

from iogate.firmware import commands
from iogate.firmware.pagetable import Stage

__all__ = [
    "dc_change", "ddt_nonleaf_change", "pc_change", "pdt_nonleaf_change", "first_stage",
    "second_stage", "msi_pte_change", "msi_table_change", "devatc", "LEAF_LIMIT",
]

#: Above this many changed leaves, one address-space-wide invalidation replaces the
#: per-address ones (as Linux's riscv-iommu driver does): a simple IOMMU treats every
#: IOTINVAL as a full flush anyway, and the queue stays short.
LEAF_LIMIT = 64


def dc_change(device_id, old):
    """After changing the device context of ``device_id`` whose old value is ``old``.

    Spec "Changing device directory table entry": ``IODIR.INVAL_DDT`` with ``DV=1``,
    then, if the old ``iohgatp`` is not Bare, ``IOTINVAL.VMA`` and ``IOTINVAL.GVMA`` with
    ``GV=1`` and its GSCID; else, if ``PDTV``, ``IOTINVAL.VMA`` for everything; else, if
    the old ``fsc`` is not Bare, ``IOTINVAL.VMA`` with ``PSCV=1`` and its PSCID.

    An old context with ``V=0`` can have left no translations in the IOTLB, so only the
    ``IODIR`` is sent for it.

    A change of ``msiptp``, ``msi_addr_mask`` or ``msi_addr_pattern`` needs ``IODIR.INVAL_DDT``
    ``DV=1`` and ``IOTINVAL.GVMA`` ``GV=1, AV=0`` (reference N.4.5: the MSI PTE cache is
    tagged by GSCID and GPA, and IODIR does not reach it). ``msiptp`` not Off implies a
    non-Bare ``iohgatp``, so the old context's GVMA above already covers it.

    Parameters
    ----------
    device_id : int
    old : DeviceContext
    """
    cmds = [commands.iodir_inval_ddt(did=device_id)]
    if not old.valid:
        return cmds
    if bits.get(IOHGATP, old.iohgatp, "mode") != IohgatpMode.BARE:
        gscid = bits.get(IOHGATP, old.iohgatp, "gscid")
        cmds += [commands.iotinval_vma(gscid=gscid), commands.iotinval_gvma(gscid=gscid)]
    elif bits.get(TC, old.tc, "pdtv"):
        cmds.append(commands.iotinval_vma())
    elif bits.get(IOSATP, old.fsc, "mode") != IosatpMode.BARE:
        cmds.append(commands.iotinval_vma(pscid=bits.get(TA, old.ta, "pscid")))
    return cmds


def ddt_nonleaf_change():
    """After changing a non-leaf DDT entry: ``IODIR.INVAL_DDT`` with ``DV=0``."""
    return [commands.iodir_inval_ddt()]


def pc_change(device_id, process_id, old, *, gscid=None):
    """After changing the process context (``device_id``, ``process_id``) whose old value
    is ``old``.

    Spec "Changing process directory table entry" (reference N.1.7): ``IODIR.INVAL_PDT``
    with ``DV=1``, the DID and the PID, then ``IOTINVAL.VMA`` with ``PSCV=1`` and the old
    PC's PSCID, with ``GV=1`` and the GSCID when the device's ``iohgatp`` is not Bare
    (``gscid`` given), ``GV=0`` otherwise. An old PC with ``V=0`` was never cached and
    left no translations (spec "Caching invalid entries"): nothing is sent.

    Parameters
    ----------
    device_id, process_id : int
    old : ProcessContext
    gscid : int or None
        The GSCID of the device context's ``iohgatp``; ``None`` when it is Bare.
    """
    if not old.valid:
        return []
    return [commands.iodir_inval_pdt(did=device_id, pid=process_id),
            commands.iotinval_vma(pscid=old.pscid, gscid=gscid)]


def pdt_nonleaf_change(device_id):
    """After changing a non-leaf PDT entry of ``device_id``'s process directory:
    ``IODIR.INVAL_DDT`` with ``DV=1`` and the DID, which drops the device context and every
    PDT entry cached for it (``IODIR.INVAL_PDT`` reaches only leaf PCs)."""
    return [commands.iodir_inval_ddt(did=device_id)]


def first_stage(changes, *, pscid, gscid=None, limit=LEAF_LIMIT):
    """After changing a first-stage table used with ``pscid`` (and ``gscid`` if nested).

    Spec "Changing first-stage page table entry" with the operands of table "IOTINVAL.VMA
    operands": ``AV=1`` and the IOVA for each changed leaf; ``AV=0`` (the whole address
    space) when a non-leaf entry changed, since ``AV=1`` reaches only leaf entries.
    ``GV=1`` with the GSCID when the second stage is not Bare.

    Parameters
    ----------
    changes : TableChanges
        From a first-stage :class:`~iogate.firmware.pagetable.PageTable`.
    pscid : int
    gscid : int or None
    limit : int
        More changed leaves than this are invalidated with one ``AV=0`` command.
    """
    if changes.stage is not Stage.FIRST:
        raise ValueError("first_stage() needs first-stage changes")
    if changes.nonleaf or len(changes.leaves) > limit:
        return [commands.iotinval_vma(pscid=pscid, gscid=gscid)]
    return [commands.iotinval_vma(pscid=pscid, gscid=gscid, addr=address)
            for address, _ in changes.leaves]


def second_stage(changes, *, gscid, limit=LEAF_LIMIT):
    """After changing the second-stage table of the VM ``gscid``.

    Spec "Changing second-stage page table entry": ``IOTINVAL.GVMA`` with ``GV=AV=1`` and
    the GPA for a leaf, ``GV=1, AV=0`` for a non-leaf.
    """
    if changes.stage is not Stage.SECOND:
        raise ValueError("second_stage() needs second-stage changes")
    if changes.nonleaf or len(changes.leaves) > limit:
        return [commands.iotinval_gvma(gscid=gscid)]
    return [commands.iotinval_gvma(gscid=gscid, addr=address) for address, _ in changes.leaves]


def msi_pte_change(gpa, gscids):
    """After changing the MSI PTE of guest page ``gpa`` in a table the VMs ``gscids`` use:
    ``IOTINVAL.GVMA`` with ``GV=1, AV=1`` and the GPA for each (reference N.4.5, "One MSI
    PTE changed"; ``IOTINVAL.VMA`` is not enough)."""
    return [commands.iotinval_gvma(gscid=g, addr=gpa & ~0xFFF) for g in sorted(set(gscids))]


def msi_table_change(gscids):
    """After changing many entries of (or replacing) an MSI page table the VMs ``gscids``
    use: ``IOTINVAL.GVMA`` with ``GV=1, AV=0`` for each (reference N.4.5, "Whole MSI PT")."""
    return [commands.iotinval_gvma(gscid=g) for g in sorted(set(gscids))]


def devatc(changes, device_id, *, pasid=None, limit=LEAF_LIMIT):
    """The ``ATS.INVAL`` commands that follow the ``IOTINVAL`` of ``changes`` for a device
    with ``DC.tc.EN_ATS`` whose ATC may cache the table (reference N.6.2 "Caching": the
    IOATC first, then the DevATC; one ``IOFENCE.C`` after both waits for the completions).

    First-stage changes: one command per changed leaf (the span of
    :func:`iogate.firmware.ats.ats_invalidate`); a non-leaf change or more than ``limit``
    leaves invalidate the whole ATC. Second-stage changes always invalidate the whole ATC:
    a first stage (the guest's, or a PC's) may map any IOVA onto a changed GPA.

    Parameters
    ----------
    changes : TableChanges
    device_id : int
    pasid : int or None
        The PASID the device uses the table with (``None``: requests without one).
    limit : int
    """
    from iogate.firmware import ats  # ats builds on this module's recipes

    if not changes:
        return []
    if changes.stage is Stage.SECOND or changes.nonleaf or len(changes.leaves) > limit:
        return [ats.ats_invalidate_all(device_id, pasid=pasid)]
    return [ats.ats_invalidate(device_id, address, size, pasid=pasid)
            for address, size in changes.leaves]
