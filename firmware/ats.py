"""ATS and PRI for one device: the enable and disable sequences, and the DevATC invalidations.

Reference N.6 (RISC-V IOMMU spec "PCIe ATS" and the software guidelines of N.6.8):

* :func:`enable` writes ``DC.tc`` ``EN_ATS`` (and ``T2GPA``, ``EN_PRI``, ``PRPR`` as asked) the
  way :meth:`~iogate.firmware.driver.Iommu.set_dc` changes every valid context: ``V=0``, the
  old context's invalidations (``IODIR.INVAL_DDT`` and the ``IOTINVAL`` its translations
  need), ``IOFENCE.C``, the new words with ``tc`` last, ``IODIR.INVAL_DDT``, ``IOFENCE.C``
  (N.6.8 "Enable" steps 2 and 3). Quiescing the device and enabling ATS, then PRI, at the
  function (steps 1 and 4) are the caller's: iogate has no PCIe configuration space.
* :func:`disable` clears ``EN_PRI`` and ``PRPR`` first, answers the groups still in the
  page-request queue and forgets the device's incomplete ones, invalidates the whole DevATC
  (``ATS.INVAL`` + ``IOFENCE.C``), and only then clears ``EN_ATS`` and ``T2GPA``. N.6.8 lists
  "clear EN_ATS" before "invalidate the DevATC", but with ``EN_ATS=0`` the device's
  Invalidation Completion is an unsupported request (N.6.1, N.6.4 design note), so the
  ``ATS.INVAL`` would only time out (``cqcsr.cmd_to``). The IOMMU caches are still
  invalidated before the DevATC (N.6.2 "Caching": ``IOTINVAL`` first): the first ``set_dc``
  has run its ``IOTINVAL`` before the ``ATS.INVAL`` is queued.
* :func:`ats_invalidate` builds the ``ATS.INVAL`` that covers an IOVA range: the smallest
  naturally aligned power-of-two span holding it, as Linux's arm-smmu-v3
  ``arm_smmu_atc_inv_to_cmd`` computes it (``log2_span = fls(page_start ^ page_end)``),
  encoded with PCIe's S bit by :func:`iogate.firmware.commands.ats_inval`;
  :func:`ats_invalidate_all` is the whole address space (``S=1``, address bits 62:12 set,
  bit 63 clear).
* :func:`unmap` is the driver's unmap with the DevATC: ``IOTINVAL`` for the changes, then an
  ``ATS.INVAL`` per device using the table, then one ``IOFENCE.C`` (N.6.2 "Caching").
"""

from iogate.hdl import bits
from iogate.hdl.formats import IOHGATP, TC, IohgatpMode

from iogate.firmware import commands, invalidate
from iogate.firmware.errors import IommuError, UnsupportedError
from iogate.firmware.pagetable import Stage

__all__ = ["enable", "disable", "ats_invalidate", "ats_invalidate_all", "unmap",
           "ATS_BITS", "PRI_BITS"]

#: The ``tc`` bits :func:`disable` clears last (``EN_ATS``, ``T2GPA``).
ATS_BITS = bits.mask(TC, "en_ats") | bits.mask(TC, "t2gpa")
#: The ``tc`` bits :func:`disable` clears first (``EN_PRI``, ``PRPR``).
PRI_BITS = bits.mask(TC, "en_pri") | bits.mask(TC, "prpr")

_PAGE_SHIFT = 12
_IOVA_LIMIT = 1 << 64


def _check_range(iova, size):
    for name, value in (("iova", iova), ("size", size)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an integer, not {value!r}")
    if size <= 0 or iova < 0 or iova + size > _IOVA_LIMIT:
        raise ValueError(f"[{iova:#x}, +{size:#x}) is not a non-empty range of the 64-bit "
                         f"address space")


def ats_invalidate(device_id, iova, size, *, pasid=None, g=False):
    """The ``ATS.INVAL`` that invalidates ``[iova, iova + size)`` in ``device_id``'s ATC.

    One command: the smallest naturally aligned span of ``2**n`` pages that holds the range
    (arm-smmu-v3's ``arm_smmu_atc_inv_to_cmd``; PCIe's S encoding cannot express another
    shape), so more than the range may be invalidated, never less.

    Parameters
    ----------
    device_id : int
        The requester (24 bits: the segment goes in DSEG, :func:`commands.route`).
    iova, size : int
        The range, in bytes (any alignment).
    pasid : int or None
        Invalidate the PASID's translations (``PV=1``).
    g : bool
        PCIe Global Invalidate (with a PASID: the Global entries of every PASID).

    Returns
    -------
    int
        The command (128 bits).
    """
    _check_range(iova, size)
    page_start = iova >> _PAGE_SHIFT
    page_end = (iova + size - 1) >> _PAGE_SHIFT
    log2_span = (page_start ^ page_end).bit_length()
    page_start &= ~((1 << log2_span) - 1)
    return commands.ats_inval(addr=page_start << _PAGE_SHIFT,
                              size=1 << (_PAGE_SHIFT + log2_span), g=g,
                              pv=pasid is not None, pid=pasid or 0,
                              **commands.route(device_id))


def ats_invalidate_all(device_id, *, pasid=None, g=False):
    """The ``ATS.INVAL`` of ``device_id``'s whole ATC: the whole 64-bit address space
    (``S=1``, Untranslated Address bits 62:12 all 1, bit 63 0; reference N.6.2's encoding).

    Without a PASID it reaches the entries of every PASID too (PCIe: an Invalidate Request
    without a PASID is not limited to one; Linux's arm-smmu-v3 flushes a whole device
    this way, ``IOMMU_NO_PASID`` with ``ATC_INV_SIZE_ALL``)."""
    return ats_invalidate(device_id, 0, _IOVA_LIMIT, pasid=pasid, g=g)


def _tc_bits(tc, **names):
    for name, on in names.items():
        tc = bits.put(TC, tc, name, int(bool(on)))
    return tc


def _rewrite_tc(iommu, device_id, dc, tc):
    # set_dc's own checks refuse the ATS bits (issue 17: the driver's checks predate ATS);
    # the rest of the context is checked with them cleared, the ATS bits here.
    iommu._check_dc(type(dc)(tc & ~(ATS_BITS | PRI_BITS), *_rest(dc)))
    iommu.set_dc(device_id, tc=tc, iohgatp=dc.iohgatp, ta=dc.ta, fsc=dc.fsc,
                 **_extended(iommu, dc), check=False)


def _rest(dc):
    return (dc.iohgatp, dc.ta, dc.fsc, dc.msiptp, dc.msi_addr_mask, dc.msi_addr_pattern,
            dc.rsvd)


def _extended(iommu, dc):
    if not iommu.extended:
        return {}
    return {"msiptp": dc.msiptp, "msi_addr_mask": dc.msi_addr_mask,
            "msi_addr_pattern": dc.msi_addr_pattern, "rsvd": dc.rsvd}


def enable(iommu, device_id, *, pri=False, prpr=False, t2gpa=False):
    """Turn on ATS (and PRI) in ``device_id``'s valid device context (N.6.8 "Enable").

    Parameters
    ----------
    iommu : iogate.firmware.driver.Iommu
    device_id : int
    pri : bool
        ``EN_PRI``: admit Page Requests (the page-request queue must be on to queue them).
    prpr : bool
        ``PRPR``: the IOMMU's own PRG responses carry the PASID; program it from the
        function's "PRG Response PASID Required" bit. Needs ``pri``.
    t2gpa : bool
        ``T2GPA``: Translation Completions return GPAs; needs ``capabilities.T2GPA`` and a
        second stage.

    Raises
    ------
    UnsupportedError
        ``capabilities.ATS`` (or ``T2GPA``) is 0.
    ValueError
        ``prpr`` without ``pri``, ``t2gpa`` with ``iohgatp`` Bare (the device-context
        checks' cause 259, reference D.2).
    IommuError
        The device context is not valid: attach the device first.
    """
    iommu._require_init()
    if not iommu.capabilities["ats"]:
        raise UnsupportedError("the IOMMU has no ATS (capabilities.ATS=0)")
    if prpr and not pri:
        raise ValueError("tc.PRPR needs tc.EN_PRI")
    dc = iommu.device_context(device_id)
    if not dc.valid:
        raise IommuError(f"device {device_id:#x} has no valid device context")
    if t2gpa:
        if not iommu.capabilities["t2gpa"]:
            raise UnsupportedError("the IOMMU has no T2GPA (capabilities.T2GPA=0)")
        if bits.get(IOHGATP, dc.iohgatp, "mode") == IohgatpMode.BARE:
            raise ValueError("tc.T2GPA needs a second stage (iohgatp not Bare)")
    tc = _tc_bits(dc.tc, en_ats=1, t2gpa=t2gpa, en_pri=pri, prpr=prpr)
    _rewrite_tc(iommu, device_id, dc, tc)


def disable(iommu, device_id, *, pq=None, fault_in=None):
    """Turn off PRI, then ATS, in ``device_id``'s device context (N.6.8 "Disable"; the order
    is the module's). The caller has quiesced the device and disabled ATS and PRI at the
    function.

    Parameters
    ----------
    iommu : iogate.firmware.driver.Iommu
    device_id : int
    pq : iogate.firmware.pq.PageRequestQueue or None
        The page-request queue: its records are handled (``fault_in``) so that no group
        queued before ``EN_PRI`` was cleared stays unanswered, and the device's incomplete
        groups are forgotten (the function discards them when its PRI is disabled).
    fault_in : callable or None
        As :meth:`~iogate.firmware.pq.PageRequestQueue.handle`; required with ``pq``.
    """
    iommu._require_init()
    dc = iommu.device_context(device_id)
    if not dc.valid or not bits.get(TC, dc.tc, "en_ats"):
        raise IommuError(f"device {device_id:#x} has no valid device context with EN_ATS")
    if pq is not None and fault_in is None:
        raise TypeError("disable() with a page-request queue needs fault_in")
    if dc.tc & PRI_BITS:
        _rewrite_tc(iommu, device_id, dc, dc.tc & ~PRI_BITS)
        dc = iommu.device_context(device_id)
    if pq is not None and pq.base is not None:
        pq.handle(fault_in, iommu.cq.submit)
        pq.forget(device_id)
    iommu.run([ats_invalidate_all(device_id)])
    _rewrite_tc(iommu, device_id, dc, dc.tc & ~ATS_BITS)


def unmap(iommu, table, iova, size, *, devices, pscid=None, gscid=None):
    """:meth:`PageTable.unmap` with the IOMMU's and the devices' caches invalidated: the
    ``IOTINVAL`` of :meth:`~iogate.firmware.driver.Iommu.sync`, then
    :func:`iogate.firmware.invalidate.devatc` for each of ``devices``, then one
    ``IOFENCE.C``, then the unlinked table pages are freed. Returns the changes.

    Parameters
    ----------
    devices : iterable of (int, int or None)
        ``(device_id, pasid)`` of every device with ``EN_ATS`` whose ATC may hold
        translations of ``table`` (``pasid`` None: requests without a PASID).
    pscid, gscid : int or None
        As :meth:`~iogate.firmware.driver.Iommu.sync`.
    """
    # The ids are checked before the table changes: a refused call changes nothing.
    if table.stage is Stage.FIRST and pscid is None:
        raise TypeError("first-stage changes need the pscid of the address space")
    if table.stage is Stage.SECOND and gscid is None:
        raise TypeError("second-stage changes need the gscid of the VM")
    devices = list(devices)
    changes = table.unmap(iova, size)
    if changes.stage is Stage.FIRST:
        cmds = invalidate.first_stage(changes, pscid=pscid, gscid=gscid)
    else:
        cmds = invalidate.second_stage(changes, gscid=gscid)
    for device_id, pasid in devices:
        cmds += invalidate.devatc(changes, device_id, pasid=pasid)
    iommu.run(cmds)
    table.release(changes)
    return changes
