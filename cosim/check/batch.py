"""Responses of a batch run, put back in request order and checked against the model.

The recorder stores responses in arrival order. The player gives request ``i`` the tag
``i mod 2**tag_width`` and reuses a tag only after its answer, so the ``k``-th response
carrying tag ``t`` answers request ``t + k * 2**tag_width`` (within a batch of the
harness's depth, a multiple of the tag space, so the rule holds across batches too).
Checking is the scoreboard's (:class:`iogate.cosim.check.scoreboard.Scoreboard`): the model's
allowed answers for each request, in request order.
"""

from iogate.hdl import bits
from iogate.hdl.port import response_layout

from iogate.cosim.check.request import TranslationResponse
from iogate.cosim.check.scoreboard import Mismatch, Scoreboard

__all__ = ["in_request_order", "decode", "verify", "read_responses", "write_responses"]


def in_request_order(raws, tag_width, n=None):
    """Raw response payloads in arrival order -> the same, indexed by request.

    ``n`` is the number of requests (default: one per response); a request without an
    answer gets ``None``.

    Raises
    ------
    ValueError
        If two responses claim the same request (a tag answered twice).
    """
    seen = {}
    out = [None] * (len(raws) if n is None else n)
    for raw in raws:
        tag = raw & ((1 << tag_width) - 1)
        k = seen.get(tag, 0)
        seen[tag] = k + 1
        index = tag + (k << tag_width)
        if index >= len(out):
            raise ValueError(f"response {raw:#x} answers request {index}, beyond the "
                             f"{len(out)} sent")
        out[index] = raw
    return out


def decode(raw, request, tag_width):
    """The :class:`TranslationResponse` packed in ``raw`` (``iogate.hdl.port.response_layout``)."""
    f = bits.unpack(response_layout(tag_width), raw)
    return TranslationResponse(
        fault=bool(f["fault"]), cause=f["cause"], ppn=f["ppn"], r=bool(f["r"]),
        w=bool(f["w"]), x=bool(f["x"]), pbmt=f["pbmt"], hit=bool(f["hit"]),
        pa=(f["ppn"] << 12) | (request.iova & 0xFFF))


def verify(model, requests, raws, tag_width):
    """Check the arrival-ordered ``raws`` against ``model``; returns the :class:`Scoreboard`.

    A request without a response is a mismatch too (``got: None``).
    """
    board = Scoreboard(model)
    for request, raw in zip(requests, in_request_order(raws, tag_width, len(requests)),
                            strict=True):
        allowed = board.expect(request)
        if raw is None:
            board.mismatches.append(Mismatch(request, None, allowed))
            continue
        board.check(request, decode(raw, request, tag_width), allowed)
    return board


def write_responses(raws, path):
    with open(path, "w") as f:
        f.write("".join(f"{r:x}\n" for r in raws))


def read_responses(path):
    with open(path) as f:
        return [int(line, 16) for line in f if line.strip()]
