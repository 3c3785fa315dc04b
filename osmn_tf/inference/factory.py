"""A `VideoSegmenter` from its options: what `tools/segment.py` and the Beam pipeline's workers build.

`SegmenterOptions` is plain data (it pickles), so a pipeline can ship it to
its workers, each of which loads the model once (`build_segmenter`).
"""
import dataclasses

from osmn_tf.data.frames import WORKING_SIZE
from osmn_tf.data.guides import PAD_RATIO


@dataclasses.dataclass(frozen=True)
class SegmenterOptions:
    """How to segment: the weights and the `VideoSegmenter` options `tools/segment.py` exposes.

    `weights`: a `.keras` file or a TF1 checkpoint prefix. `int8_model`: a
    folder `osmn_tf.quantization.Int8FrameNetwork.save` wrote from the same
    weights and working size, which then runs the per-frame network. `adapt`:
    an `osmn_tf.training.finetune.OnlineFinetuning` (None: none), per object
    with `finetune_per_object`. The others are `VideoSegmenter`'s:
    `guide_pad_ratio` is the release's `--vg_pad_ratio`, `guide_keep_aspect_ratio`
    its `--vg_keep_aspect_ratio`, `guide_bbox_sup` its `--bbox_sup`.
    """

    weights: str
    working_size: tuple = WORKING_SIZE
    precision: str = "float32"
    jit_compile: bool = False
    int8_model: str = None
    crf: bool = False
    crf_merge: str = "refined"
    adapt: object = None
    finetune_per_object: bool = False
    guide_pad_ratio: float = PAD_RATIO
    guide_keep_aspect_ratio: bool = False
    guide_bbox_sup: bool = False
    use_original_mask: bool = False


def build_segmenter(options):
    """The `VideoSegmenter` of `options`, its model loaded (TensorFlow imported) only now.

    lite's network needs multiples of 32 (the release fails otherwise): its
    frames are padded to them. Raises ValueError naming `--use-original-mask`
    or `--int8-model` when they do not fit the weights, and
    `errors.CheckpointError` for unreadable weights.
    """
    from osmn_tf.inference.segmenter import VideoSegmenter
    from osmn_tf.weights.checkpoints import load_model

    if options.int8_model:
        from osmn_tf.quantization import check_extra

        check_extra()
    model = load_model(options.weights)
    if options.use_original_mask and model.config.base_model != "masktrack":
        raise ValueError(f"--use-original-mask is masktrack's spatial guide, but --weights {options.weights} is a "
                         f"{model.config.base_model} model")
    pad = model.config.base_model == "lite"
    return VideoSegmenter(
        model, working_size=options.working_size, adapt=options.adapt, jit_compile=options.jit_compile,
        precision=options.precision, frame_network=int8_network(options, model, pad), crf=options.crf or None,
        crf_merge=options.crf_merge, pad=pad, adapt_per_object=bool(options.adapt and options.finetune_per_object),
        guide_pad_ratio=options.guide_pad_ratio, guide_keep_aspect_ratio=options.guide_keep_aspect_ratio,
        guide_bbox_sup=options.guide_bbox_sup, use_original_mask=options.use_original_mask)


def int8_network(options, model, pad=False):
    """The `int8_model` network, checked against the model and working size; None without one.

    With `pad` (lite) it runs at the working size padded to multiples of 32, as it was quantized.
    """
    if not options.int8_model:
        return None
    from osmn_tf.data.frames import padded_size
    from osmn_tf.quantization import Int8FrameNetwork

    network = Int8FrameNetwork.load(options.int8_model, name="--int8-model")
    network.check_model(model, f"--weights {options.weights}")
    if network.working_size != (padded_size(options.working_size) if pad else tuple(options.working_size)):
        width, height = network.working_size
        lite = " (lite: a working size padded to multiples of 32)" if pad else f"; give --working-size {width}x{height}"
        raise ValueError(f"--int8-model {options.int8_model} was quantized at {width}x{height}{lite} or quantize again")
    return network
