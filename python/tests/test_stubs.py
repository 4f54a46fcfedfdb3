"""The stubs in _native.pyi must match the compiled module."""

from __future__ import annotations

import ast
import inspect
import pathlib

import sessionkeeper
from sessionkeeper import _native

STUB = pathlib.Path(_native.__file__).with_name("_native.pyi")


def stub_tree():
    tree = ast.parse(STUB.read_text())
    functions, classes, constants = {}, {}, set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            functions[node.name] = node
        elif isinstance(node, ast.ClassDef):
            classes[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if not node.target.id.startswith("_"):
                constants.add(node.target.id)
    return functions, classes, constants


def params_of(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    a = fn.args
    names = [p.arg for p in a.posonlyargs + a.args if p.arg not in ("self", "cls")]
    names += [p.arg for p in a.kwonlyargs]
    if a.vararg:
        names.append("*" + a.vararg.arg)
    if a.kwarg:
        names.append("**" + a.kwarg.arg)
    return names


def runtime_params(obj) -> list[str]:
    out = []
    for p in inspect.signature(obj).parameters.values():
        if p.name in ("self", "cls", "$self", "$cls"):
            continue
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        out.append(prefix + p.name)
    return out


def test_stub_file_ships_with_the_module():
    assert STUB.exists()
    assert STUB.with_name("py.typed").exists()


def test_module_names_match():
    functions, classes, constants = stub_tree()
    public = {n for n in dir(_native) if not n.startswith("_")}
    assert public == {f for f in functions if not f.startswith("_")} | set(classes) | constants


def test_function_signatures_match():
    functions, _, _ = stub_tree()
    for name, node in functions.items():
        assert params_of(node) == runtime_params(getattr(_native, name)), name


def test_class_members_and_signatures_match():
    _, classes, _ = stub_tree()
    for cname, cnode in classes.items():
        cls = getattr(_native, cname)
        stub_members = {}
        for item in cnode.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                stub_members[item.name] = item
        runtime_members = {n for n in vars(cls) if not n.startswith("_")}
        assert runtime_members == {n for n in stub_members if not n.startswith("_")}, cname
        for mname, mnode in stub_members.items():
            is_property = any(isinstance(d, ast.Name) and d.id == "property" for d in mnode.decorator_list)
            if mname == "__new__":
                assert params_of(mnode) == runtime_params(cls), cname
            elif is_property:
                assert inspect.isdatadescriptor(vars(cls)[mname]), f"{cname}.{mname} is not a property"
            else:
                assert params_of(mnode) == runtime_params(getattr(cls, mname)), f"{cname}.{mname}"


def test_init_exports_exist():
    for name in sessionkeeper.__all__:
        assert hasattr(sessionkeeper, name), name
