"""The README's process-context example runs, and each value its comments promise is what
the model answers (the comments were worked out from the spec: PD17 indexes 17-bit PASIDs,
a supervisor request to a U=1 page needs SUM (13 without), a PASID without a valid PC and
DPE's process 0 without one are 266)."""

import ast
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Process contexts"


def _example():
    text = README.read_text()
    section = text[text.index(SECTION):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_gives_what_its_comments_say():
    source = _example()
    tree = ast.parse(source)
    lines = source.splitlines()
    namespace = {}
    checked = 0
    for statement in tree.body:
        code = ast.get_source_segment(source, statement)
        comment = lines[statement.end_lineno - 1].partition("#")[2].strip()
        value = re.match(r"(0x[0-9a-fA-F]+|\d+)\b", comment)
        if isinstance(statement, ast.Expr) and value:
            assert eval(code, namespace) == int(value.group(1), 0), code
            checked += 1
        else:
            exec(compile(ast.Module([statement], []), "README", "exec"), namespace)
    assert checked == 4
