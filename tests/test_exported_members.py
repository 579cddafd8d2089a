import tuanjian_xlsx


def test_all_is_sorted_and_importable():
    assert tuanjian_xlsx.__all__ == sorted(tuanjian_xlsx.__all__)
    for name in tuanjian_xlsx.__all__:
        assert getattr(tuanjian_xlsx, name) is not None


def test_library_never_imports_click_or_prints():
    import ast
    from pathlib import Path

    for path in Path(tuanjian_xlsx.__file__).parent.glob("*.py"):
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
