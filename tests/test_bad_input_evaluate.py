"""tools/evaluate.py: every user error ends in one line naming the file, and a non-zero exit."""
import numpy as np
import pytest

from osmn_tf.data.davis import write_mask

from conftest import run_tool


def layout(root, frames=3):
    """A DAVIS root with one sequence `a` (objects 1 and 2) and matching results in root/results."""
    labels = np.zeros((24, 32), np.uint8)
    labels[2:10, 2:10], labels[12:20, 12:20] = 1, 2
    for t in range(frames):
        write_mask(root / f"Annotations/480p/a/{t:05d}.png", labels)
        write_mask(root / f"results/a/{t:05d}.png", labels)
    (root / "JPEGImages/480p/a").mkdir(parents=True)
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/val.txt").write_text("a\n")
    return root


def break_it(root, case):
    if case == "missing sequence":
        (root / "ImageSets/2017/val.txt").write_text("a\nb\n")
        return f"DAVIS annotation folder not found: {root / 'Annotations/480p/b'}"
    if case == "missing frame":
        (root / "results/a/00001.png").unlink()
        return f"result frame missing: {root / 'results/a/00001.png'}"
    if case == "wrong size":
        write_mask(root / "results/a/00001.png", np.zeros((10, 10), np.uint8))
        return f"{root / 'results/a/00001.png'}: size (10, 10) differs from the annotation"
    if case == "extra object":
        write_mask(root / "results/a/00001.png", np.full((24, 32), 3, np.uint8))
        return f"{root / 'results/a/00001.png'}: object id 3 but the sequence has only 2 object(s)"
    if case == "missing split list":
        (root / "ImageSets/2017/val.txt").unlink()
        return f"DAVIS split list not found: {root / 'ImageSets/2017/val.txt'}"
    if case == "missing results folder":
        import shutil

        shutil.rmtree(root / "results")
        return f"results folder not found: {root / 'results'}"
    raise AssertionError(case)


# The mIoU resizes results and ignores extra ids, so those two cases are the J & F metric's only.
CASES = [(case, metric) for case in ("missing sequence", "missing frame", "wrong size", "extra object",
                                     "missing split list", "missing results folder")
         for metric in ("davis", "miou") if not (metric == "miou" and case in ("wrong size", "extra object"))]


@pytest.mark.parametrize("case,metric", CASES)
def test_user_errors_end_in_one_line(tmp_path, case, metric):
    root = layout(tmp_path / "davis")
    expected = break_it(root, case)
    code, message = run_tool("evaluate", "--davis-root", root, "--results", root / "results", "--metric", metric)
    assert code != 0
    assert message.startswith("error: ") and expected in message, message
    assert "\n" not in message


def test_a_good_layout_still_evaluates(tmp_path):
    root = layout(tmp_path / "davis")
    assert run_tool("evaluate", "--davis-root", root, "--results", root / "results")[0] == 0
    assert (root / "results/global_results-val.csv").is_file()


def youtube_vos_valid(root, frames=4):
    """A YouTube-VOS `valid` layout as released: every frame's JPEG, annotations only where an object first
    appears (object 1 at frame 0, object 2 at frame 2), and results for every frame."""
    from PIL import Image

    for t in range(frames):
        path = root / "valid" / "JPEGImages" / "vid" / f"{5 * t:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(path)
        labels = np.zeros((24, 32), np.uint8)
        labels[2:10, 2:10] = 1
        if t >= 2:
            labels[12:20, 12:20] = 2
        write_mask(root / "results" / "Annotations" / "vid" / f"{5 * t:05d}.png", labels)
    first = np.zeros((24, 32), np.uint8)
    first[2:10, 2:10] = 1
    write_mask(root / "valid" / "Annotations" / "vid" / "00000.png", first)
    entry = np.zeros((24, 32), np.uint8)
    entry[12:20, 12:20] = 2
    write_mask(root / "valid" / "Annotations" / "vid" / "00010.png", entry)
    return root


def test_sparse_youtube_vos_ground_truth_is_refused(tmp_path):
    root = youtube_vos_valid(tmp_path / "ytvos")
    code, message = run_tool("evaluate", "--youtube-vos-root", root, "--split", "valid", "--results",
                             root / "results")
    folder = root / "valid" / "Annotations" / "vid"
    assert (code, message) == (1, f"error: {folder}: no ground truth for frame 00005 (2 of 4 frames have one): "
                                  "annotations only where objects first appear (YouTube-VOS valid and test) cannot "
                                  "be scored; evaluation needs every frame's (e.g. held-out train videos)")
    assert not list((root / "results").glob("*.csv"))


def test_miou_is_refused_for_youtube_vos(tmp_path, capsys):
    root = youtube_vos_valid(tmp_path / "ytvos")
    code, _ = run_tool("evaluate", "--youtube-vos-root", root, "--split", "valid", "--results", root / "results",
                       "--metric", "miou")
    assert code == 2
    assert ("error: --metric miou is for --davis-root; --youtube-vos-root is scored with J and F (the "
            "challenge's metrics)") in capsys.readouterr().err
