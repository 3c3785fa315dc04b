"""The README stays true: its commands parse with the tools as they are, its Python snippet runs, CI runs its
test command."""
import argparse
import os
import re
import shlex

import numpy as np
import pytest

from conftest import REPO, load_tool, synthetic_video

README = (REPO / "README.md").read_text()


def readme_commands():
    """Every `python tools/<tool>.py ...` command of the README (continuation lines joined)."""
    text = README.replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        for part in line.split("&&"):
            part = part.strip().split(" | ")[-1].strip().strip("`")
            if part.startswith("python tools/"):
                commands.append(part)
    return commands


class _Parsed(Exception):
    pass


def test_the_readme_names_tools_that_exist():
    commands = readme_commands()
    assert len(commands) >= 8
    for command in commands:
        tool = shlex.split(command)[1]
        assert (REPO / tool).is_file(), command


@pytest.mark.parametrize("command", readme_commands())
def test_each_readme_command_parses(command, monkeypatch, capsys):
    """Flag names and values as the tool's own parser reads them (the run itself would need the user's data)."""
    argv = shlex.split(command)
    tool = load_tool(pathlib_stem(argv[1]))

    parse_known_args = argparse.ArgumentParser.parse_known_args

    def parse_only(self, args=None, namespace=None):
        namespace, unknown = parse_known_args(self, args, namespace)
        # Only Beam's pipeline options may follow a tool's own (--runner).
        if unknown and not getattr(namespace, "runner", None):
            self.error(f"unrecognized arguments: {' '.join(unknown)}")
        raise _Parsed(namespace)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_only)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", parse_only)
    with pytest.raises(_Parsed):
        try:
            tool.main(argv[2:])
        except SystemExit:
            pytest.fail(f"{command}: {capsys.readouterr().err.strip()}")


def pathlib_stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    command = re.search(r'pip install -e "\.\[test\]" && (python -m pytest[^\n]*)', ci).group(1).strip()
    assert f'pip install -e ".[test]" && {command}' in README


def test_the_fast_tier_is_the_readme_fast_command():
    assert 'python -m pytest -q tests -m "not slow" -n 2' in README


@pytest.mark.slow
def test_the_readme_python_snippet_runs(tmp_path, small_model, monkeypatch):
    snippet = re.search(r"## Python API\n\n```python\n(.*?)```", README, re.S).group(1)
    (tmp_path / "weights").mkdir()
    small_model.save(tmp_path / "weights" / "osmn.keras")
    monkeypatch.chdir(tmp_path)
    frames, first_mask = synthetic_video(num_frames=3)
    mask_30 = np.roll(first_mask, 2, axis=1)
    # The snippet's `...` bodies and its full-size model are what a user runs; only the weights are small.
    scope = {"frames": frames, "first_mask": first_mask, "mask_30": mask_30}
    exec(compile(snippet, "README.md", "exec"), scope)
    assert scope["labels"].shape == first_mask.shape
    assert scope["model"].config.width == 1.0
