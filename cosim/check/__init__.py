"""Checking, without cocotb: the request and answer types, the mirror that drives a target
and the model together, and the scoreboard that checks every answer against the model.

Layer: above :mod:`iogate.cosim.model`; below the targets, which hand what they see to the
types and the checkers here. Imports neither cocotb nor a simulator, so a board, a batch
trace and the cocotb test bench are all checked by the same code.

========================  =============================================================
:mod:`.request`           :class:`TranslationRequest`, one request as the checkers take it
:mod:`.mirror`            :class:`Mirror`: a ``Bus`` over any target and the model
:mod:`.scoreboard`        :class:`Scoreboard`: answers against ``IommuModel.allowed``
:mod:`.batch`             a batch run's responses, put back in order and checked
========================  =============================================================
"""
