"""The public API is typed: every public function and method of the modules that `make lint`
runs mypy on ([tool.mypy] modules in pyproject.toml) annotates its parameters and its return.

mypy checks the bodies of annotated functions only; this test keeps a new public method from
joining the API unannotated, and so unchecked.
"""

import importlib
import inspect
import pathlib
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODULES = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["modules"]



def _functions(module):
    """``(qualified name, function)`` of the public functions and methods of ``module``."""
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isfunction(obj) and obj.__module__ == module.__name__:
            yield f"{module.__name__}.{name}", obj
        elif inspect.isclass(obj) and obj.__module__ == module.__name__:
            for attr, value in vars(obj).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                if isinstance(value, (classmethod, staticmethod)):
                    value = value.__func__
                elif isinstance(value, property):
                    value = value.fget
                if inspect.isfunction(value) and value.__module__ == module.__name__:
                    yield f"{module.__name__}.{name}.{attr}", value


def _missing(function):
    """The parameters of ``function`` (and ``return``) that have no annotation."""
    signature = inspect.signature(function)
    missing = [p.name for i, p in enumerate(signature.parameters.values())
               if p.annotation is inspect.Parameter.empty
               and not (i == 0 and p.name in ("self", "cls"))]
    if signature.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


@pytest.mark.parametrize("module_name", MODULES)
def test_public_signatures_are_annotated(module_name):
    module = importlib.import_module(module_name)
    untyped = {name: _missing(f) for name, f in _functions(module) if _missing(f)}
    assert not untyped, f"unannotated: {untyped}"


def test_an_unannotated_method_is_found():
    """The check itself: a public method without annotations is reported."""
    class Sample:
        def method(self, x):
            return x
    assert _missing(Sample.method) == ["x", "return"]
