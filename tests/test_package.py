"""The package as a user meets it: its public names, its size arguments, and a repository that stands alone."""
import argparse
import pytest

import osmn_tf
from conftest import REPO, load_tool
from osmn_tf.data.frames import parse_size


def test_public_names_resolve_and_include_the_video_segmenter():
    assert "VideoSegmenter" in osmn_tf.__all__
    from osmn_tf.inference.segmenter import VideoSegmenter

    assert osmn_tf.VideoSegmenter is VideoSegmenter
    for name in osmn_tf.__all__:
        assert getattr(osmn_tf, name) is not None, name


@pytest.mark.parametrize("text, size", [("854x480", (854, 480)), ("96", (96, 96)), (" 160X96 ", (160, 96))])
def test_sizes_are_wxh_or_one_side_of_a_square(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["0", "96x0", "-5", "axb", "1x2x3", ""])
def test_bad_sizes_are_refused_with_the_value(text):
    with pytest.raises(ValueError, match="expected WxH"):
        parse_size(text)


def test_tools_share_the_size_argument():
    cli_args = load_tool("cli_args")
    assert cli_args.size("64") == (64, 64)
    with pytest.raises(argparse.ArgumentTypeError, match="at least 16x16"):
        cli_args.size("8", minimum=16)
    args = load_tool("train").parse_args(["--image-size", "96"])
    assert args.image_size == (96, 96)


@pytest.mark.slow
def test_nothing_in_the_repository_reads_outside_it():
    # A clone has nothing beside it; the name is assembled so this file does not match itself.
    outside = ".." + "/shared"
    texts = {".py", ".md", ".txt", ".cfg", ".toml", ".ini", ".json", ".cff", ".yml", ".yaml", ""}
    offenders = [
        str(path.relative_to(REPO)) for path in REPO.rglob("*")
        if path.is_file() and path.suffix in texts and not {".git", "__pycache__"} & set(path.parts)
        and ".egg-info" not in str(path) and outside in path.read_text(errors="ignore")
    ]
    assert offenders == []


def test_ci_runs_exactly_the_readmes_test_command():
    readme = (REPO / "README.md").read_text().splitlines()
    commands = [line.strip() for line in readme if "python -m pytest" in line and "pip install" in line]
    assert len(commands) == 1, commands
    assert commands[0] in (REPO / ".ci" / "run").read_text().splitlines()


def test_readme_stays_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 200


def _module_imports():
    """`{module: modules of osmn_tf it imports at module level}` for every module of the package."""
    import ast

    modules = {}
    for path in (REPO / "osmn_tf").rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    imports = {}
    for name, path in modules.items():
        found = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("osmn_tf"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        # A package importing its own submodules is its public face, not a cycle.
        imports[name] = {m for m in found if m in modules and m != name and not m.startswith(name + ".")}
    return imports


def test_no_import_cycle_between_modules():
    imports, cycles = _module_imports(), []

    def visit(module, stack):
        for other in sorted(imports[module]):
            if other in stack:
                cycles.append(" -> ".join(stack[stack.index(other):] + [other]))
            elif other not in done:
                visit(other, stack + [other])
        done.add(module)

    done = set()
    for module in sorted(imports):
        if module not in done:
            visit(module, [module])
    assert not cycles, cycles


def test_no_module_over_400_lines():
    long = {str(p.relative_to(REPO)): n for p in (REPO / "osmn_tf").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long
