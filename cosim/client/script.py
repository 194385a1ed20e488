"""Loading a user's script and running it so that nothing it does escapes the report.

A script is a Python file run top to bottom with ``host`` (a
:class:`~iogate.cosim.client.host.Host`) among its globals; nothing needs importing to
use it. Anything else callable with a host can be named as ``module:function`` (the Linux
replay is ``iogate.cosim.scenarios.linux:replay``), which is how a simulator process finds
the same code again.

:func:`execute` runs one against a host and always returns a report: an exception the
script raised becomes the report's ``error``, with the traceback cut down to the frames of
the script's own file (the innermost one is ``error.line``), so the user reads their line,
not the simulator's plumbing.
"""

import importlib
import pathlib
import traceback

__all__ = ["load", "execute", "describe_error"]


def load(spec: str):
    """The callable ``fn(host)`` named by ``spec`` and the files its frames are in.

    ``spec`` is a path ending in ``.py`` (the script) or ``module:function``.

    Raises
    ------
    FileNotFoundError
        If the script does not exist.
    ValueError
        If ``spec`` is neither form.
    """
    if spec.endswith(".py"):
        path = pathlib.Path(spec).resolve()
        source = path.read_text()
        code = compile(source, str(path), "exec")

        def run_script(host):
            scope = run_script.scope
            scope.update({"__name__": "__iogate_host__", "__file__": str(path), "host": host})
            exec(code, scope)
            return scope.get("result")

        # The globals outlive a raise: the report keeps the ``result`` set so far.
        run_script.scope = {}

        return run_script, {str(path)}
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"{spec!r} is neither a script (.py) nor module:function")
    fn = getattr(importlib.import_module(module), name)
    return fn, {fn.__code__.co_filename}


def describe_error(error: BaseException, files) -> dict:
    """An exception as the report gives it: type, message, the script's line, and the
    traceback frames that are in ``files`` (all of them if none is)."""
    frames = traceback.extract_tb(error.__traceback__)
    mine = [f for f in frames if f.filename in files] or frames[-1:]
    where = mine[-1] if mine else None
    return {
        "type": type(error).__name__,
        "message": str(error),
        "line": f"{pathlib.Path(where.filename).name}:{where.lineno}" if where else None,
        "code": where.line if where else None,
        "traceback": [f"{pathlib.Path(f.filename).name}:{f.lineno} in {f.name}: {f.line}"
                      for f in mine],
    }


def execute(spec: str, host) -> dict:
    """Run ``spec`` (see :func:`load`) with ``host``; returns ``host.report()`` with the
    script's ``result`` (its global of that name, or the function's return value) and
    ``error`` (None, or :func:`describe_error`); a script that raised keeps the ``result``
    it had set."""
    error, result, fn = None, None, None
    files = set()
    try:
        fn, files = load(spec)
        result = fn(host)
    except (Exception, SystemExit) as e:   # reported: the caller turns it into the status
        error = describe_error(e, files)
        result = getattr(fn, "scope", {}).get("result") if fn is not None else None
    try:
        host.finish()
    except Exception as e:                  # a target that died with the script
        error = error or describe_error(e, files)
    report = host.report()
    report.update(script=spec, result=result, error=error)
    return report
