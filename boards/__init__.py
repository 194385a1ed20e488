"""Board tops for amaranth-boards platforms and their bitstream builds.

One concept per module:

========================  =============================================================
:mod:`.protocol`          the host bridge's frame format, shared with the host
                          (:mod:`iogate.cosim.targets.board`)
:mod:`.uart`              8N1 receiver and transmitter
:mod:`.bridge`            framed requests onto MMIO, on-chip memory and the requester
:mod:`.memory`            on-chip RAM as an AXI4 subordinate (DECERR outside it)
:mod:`.requester`         the DMA requester on a translation port
:mod:`.top`               :class:`BoardTop`: all of the above around the IOMMU
:mod:`.icebreaker`        ICEBreaker (iCE40UP5K): a small Config, SPRAM, 12 MHz
:mod:`.ecpix5`            ECPIX-5 85F (ECP5-85): the full first target, PLL to 40 MHz
:mod:`.build`             bitstreams with YoWASP through amaranth-boards, and reports
========================  =============================================================
"""
