"""matplotlib for the benchmark plots, when the ``bench`` extra installed it."""

__all__ = ["pyplot"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed), or None with a message
    when matplotlib is not installed (``pip install -e '.[bench]'``)."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plot")
        return None
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    return plt
