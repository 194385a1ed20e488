"""Board tops for amaranth-boards platforms and their bitstream builds."""
