"""Several objects in one video reproduce the original pipeline (SPEC 5), through the tool users run.

One object per frame hid a multi-object regression once: these sequences have
two objects that touch (`duo`), and the same two plus a third one apart
(`trio`). Their expected label maps come from the reference commit named in
`data/README.md` (`sequence_multi/`), which equals the original pipeline.

The stored reference's round-off is not reproducible everywhere: on an AMD
EPYC with AVX2 only, its own commit and today's code give the same
probabilities, about 1.5e-5 from the stored ones (kernels that sum in another
order), so a pixel at 0.5 can be decided the other way (duo frame 1 has one
at 0.500001). Later frames chain it: a flipped pixel moves its object's mask
median, and with it the next frame's spatial guide (a Gaussian around that
median); dogs frame 5 agrees on 99.82% there for that reason alone. So the
tool is held to the issue's 99.9% against the original's procedure run here,
on this CPU (`original_pipeline_labels`: every object alone, batch 1, the
unfolded model with BatchNorm in the graph), and to the stored reference
with thresholds that hold across CPUs.
"""
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from osmn_tf.data.davis import read_mask
from osmn_tf.data.frames import preprocess_frame, resize_mask
from osmn_tf.data.guides import spatial_guide, visual_guide
from osmn_tf.inference.tracking import masks_at_size, merge_probabilities

from conftest import DATA, run_tool_process

pytestmark = pytest.mark.large

MULTI = DATA / "sequence_multi"
SEQUENCES = {"duo": (1, 2), "trio": (1, 2, 3), "dogs": (1, 2, 3)}
# The original's procedure, run here, on two of them (about 90 s each): trio is duo and an object apart, and
# the stored reference holds the tool to it.
SAME_CPU_SEQUENCES = ("duo", "dogs")
MIN_AGREEMENT = 0.999  # the target, against the original's procedure on the same CPU
FIRST_STEP_AGREEMENT = 0.9999  # the stored reference, frame 1: round-off alone (one pixel of 409920 on AVX2)
CHAINED_AGREEMENT = 0.995  # the stored reference, later frames: round-off amplified (99.82% on AVX2, above)
WORKING = (854, 480)
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


@pytest.fixture(scope="module")
def tool_output(tmp_path_factory, tf1_checkpoint):
    """`tools/segment.py`'s label maps of the three sequences, as users run it."""
    out = tmp_path_factory.mktemp("multi") / "out"
    result = run_tool_process("segment", "--weights", tf1_checkpoint("full"), "--davis-root", MULTI / "davis",
                              "--year", "2017", "--split", "val", "--output", out)
    assert result.returncode == 0, result.stderr
    return out


def original_pipeline_labels(model, frames, first, ids):
    """Frames 1.. of the original's test loop (SPEC 5): every object alone at batch 1 through the unfolded
    model (BatchNorm in the graph), its spatial guide from its own previous mask; probabilities merged
    with the 0.5 background, written at the frame's size."""
    probabilities = []
    images = [preprocess_frame(frame, WORKING)[np.newaxis] for frame in frames[1:]]
    for object_id in ids:
        guide = visual_guide(frames[0], first == object_id, size=model.config.guide_size)[np.newaxis]
        previous = masks_at_size((first == object_id)[np.newaxis], WORKING)[0]
        own = []
        for image in images:
            logits = model({"guide_image": guide, "spatial_guide": spatial_guide(previous)[np.newaxis],
                            "image": image}, training=False)
            own.append(tf.sigmoid(logits).numpy()[0, ..., 0])
            previous = own[-1] > 0.5
        probabilities.append(own)
    labels = [merge_probabilities(np.stack(frame), ids) for frame in zip(*probabilities)]
    return [resize_mask(l, first.shape[::-1]) if l.shape != first.shape else l for l in labels]


def test_tool_equals_the_original_pipeline_run_here_on_every_frame(tool_output, tf1_checkpoint):
    from osmn_tf.weights.checkpoints import load_model

    model = load_model(tf1_checkpoint("full"))
    for sequence in SAME_CPU_SEQUENCES:
        ids = SEQUENCES[sequence]
        first = first_mask_of(sequence)
        np.testing.assert_array_equal(read_mask(tool_output / sequence / "00000.png"), first)
        reference = original_pipeline_labels(model, frames_of(sequence), first, ids)
        for k, expected_labels in enumerate(reference, start=1):
            agreement = np.mean(read_mask(tool_output / sequence / f"{k:05d}.png") == expected_labels)
            print(f"{sequence} frame {k}: labels agree with the original's procedure on {agreement:.5%}")  # -rP
            assert agreement >= MIN_AGREEMENT, (sequence, k, agreement)


def test_tool_agrees_with_the_stored_reference_on_any_cpu(tool_output, expected):
    for sequence in SEQUENCES:
        for k in range(1, 6):
            labels = read_mask(tool_output / sequence / f"{k:05d}.png")
            agreement = np.mean(labels == expected[f"{sequence}/{k:05d}/labels"])
            print(f"{sequence} frame {k}: labels agree with the stored reference on {agreement:.5%}")  # for -rP
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
