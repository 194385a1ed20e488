"""What the command and fault queues share: their size rule.

Spec "Command-queue base (cqb)" and "Fault queue base (fqb)".

A queue base register holds LOG2SZ-1, so a queue has a power-of-two number of entries;
this driver allows 2 to 2**20 of them.
"""

__all__ = ["check_entries"]


def check_entries(entries):
    """Raise ``ValueError`` unless ``entries`` is a power of two from 2 to 2**20."""
    if (not isinstance(entries, int) or entries < 2 or entries > 1 << 20
            or entries & (entries - 1)):
        raise ValueError(f"entries must be a power of two from 2 to 2**20, not {entries!r}")
