"""Several objects in one video reproduce the original pipeline (SPEC 5), through the tool users run.

One object per frame hid a multi-object regression once: these sequences have
two objects that touch (`duo`), and the same two plus a third one apart
(`trio`). Their expected label maps come from the reference commit named in
`data/README.md` (`sequence_multi/`), which equals the original pipeline.

The reference's round-off is not reproducible everywhere: on an AMD EPYC
with AVX2 only, its own commit and today's code give the same probabilities,
about 1.5e-5 from the stored ones (kernels that sum in another order), so a
pixel at 0.5 can be decided the other way (duo frame 1 has one at
0.500001). Frame 1, one step from the first mask, shows just that. Later
frames chain it: a flipped pixel moves its object's mask median, and with it
the next frame's spatial guide (a Gaussian around that median); dogs frame 5
agrees on 99.82% here for that reason alone. So across CPUs this test
catches a wrong merge, guide or object order, not a change of round-off such
as issue 24's (that shows only on the CPU the reference ran on: data/README.md).
"""
import numpy as np
import pytest
from PIL import Image

from osmn_tf.data.davis import read_mask

from conftest import DATA, run_tool_process

pytestmark = pytest.mark.large

MULTI = DATA / "sequence_multi"
SEQUENCES = {"duo": (1, 2), "trio": (1, 2, 3), "dogs": (1, 2, 3)}
FIRST_STEP_AGREEMENT = 0.9999  # frame 1: round-off alone (one pixel of 409920 here)
CHAINED_AGREEMENT = 0.995  # later frames: round-off amplified through the spatial guide (99.82% measured, above)
PROBABILITY_TOLERANCE = 1e-4  # the stored maps are rounded to 1/65535, 7.7e-6 at most


@pytest.fixture(scope="module")
def expected():
    with np.load(MULTI / "expected.npz") as data:
        return {key: data[key] for key in data.files}


def frames_of(sequence):
    folder = MULTI / "davis" / "JPEGImages" / "480p" / sequence
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.jpg"))]


def first_mask_of(sequence):
    return read_mask(MULTI / "davis" / "Annotations" / "480p" / sequence / "00000.png")


def test_the_sequences_exercise_the_merge(expected):
    # The test can only catch a merge or batching error if objects meet and compete for pixels.
    duo = first_mask_of("duo")
    assert ((duo[:, :-1] == 1) & (duo[:, 1:] == 2)).any(), "objects 1 and 2 must touch"
    for sequence, ids in SEQUENCES.items():
        labels = expected[f"{sequence}/00001/labels"]
        assert set(np.unique(labels)) == {0, *ids}, sequence
        both = np.stack([expected[f"{sequence}/{i}/00001/prob_u16"] for i in ids[:2]]) > 32767
        assert both.all(axis=0).sum() > 1000, f"{sequence}: objects 1 and 2 should overlap in their predictions"


def test_tool_reproduces_the_label_maps_of_every_frame(tmp_path, tf1_checkpoint, expected):
    result = run_tool_process("segment", "--weights", tf1_checkpoint("full"), "--davis-root", MULTI / "davis",
                              "--year", "2017", "--split", "val", "--output", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    for sequence in SEQUENCES:
        np.testing.assert_array_equal(read_mask(tmp_path / f"out/{sequence}/00000.png"), first_mask_of(sequence))
        for k in range(1, 6):
            labels = read_mask(tmp_path / f"out/{sequence}/{k:05d}.png")
            agreement = np.mean(labels == expected[f"{sequence}/{k:05d}/labels"])
            print(f"{sequence} frame {k}: labels agree on {agreement:.5%}")  # for -rP
            assert agreement >= (FIRST_STEP_AGREEMENT if k == 1 else CHAINED_AGREEMENT), (sequence, k, agreement)


def test_each_objects_probabilities_on_frame_1(tf1_checkpoint, expected):
    from osmn_tf.inference.segmenter import VideoSegmenter
    from osmn_tf.weights.checkpoints import load_model

    segmenter = VideoSegmenter(load_model(tf1_checkpoint("full")))
    for sequence, ids in SEQUENCES.items():
        result = list(segmenter.track(frames_of(sequence)[:2], first_mask_of(sequence)))[1]
        assert result.object_ids == ids
        for k, object_id in enumerate(ids):
            reference = expected[f"{sequence}/{object_id}/00001/prob_u16"].astype(np.float64) / 65535
            difference = np.abs(result.probabilities[k] - reference).max()
            print(f"{sequence} object {object_id} frame 1: probabilities within {difference:.1e}")  # for -rP
            assert difference <= PROBABILITY_TOLERANCE, (sequence, object_id, difference)
