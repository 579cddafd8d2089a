import tuanjian_xlsx


def test_all_is_sorted_and_importable():
    assert tuanjian_xlsx.__all__ == sorted(tuanjian_xlsx.__all__)
    for name in tuanjian_xlsx.__all__:
        assert getattr(tuanjian_xlsx, name) is not None


def test_library_never_imports_click_or_prints():
    import ast
    from pathlib import Path

    for path in Path(tuanjian_xlsx.__file__).parent.rglob("*.py"):
        if path.name in ("cli.py", "__main__.py"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                assert "click" not in names, path.name
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("print", "exit"), f"{path.name}:{node.lineno}"
            if isinstance(node, ast.Attribute) and node.attr == "exit":
                assert not (isinstance(node.value, ast.Name) and node.value.id == "sys"), f"{path.name}:{node.lineno}"


def test_the_issue_code_docs_are_generated_from_the_catalogue():
    from pathlib import Path

    from tuanjian_xlsx.issues import catalogue_markdown

    docs = Path(tuanjian_xlsx.__file__).resolve().parent.parent / "docs" / "问题代码.md"
    assert docs.read_text(encoding="utf-8") == catalogue_markdown(), "run scripts/issue_docs"


def test_all_is_exactly_the_public_names():
    import types

    for name in dir(tuanjian_xlsx):  # the names the package imports only when first asked for, too
        getattr(tuanjian_xlsx, name)
    public = {n for n, v in vars(tuanjian_xlsx).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public == set(tuanjian_xlsx.__all__)
