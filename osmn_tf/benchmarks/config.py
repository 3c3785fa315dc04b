"""What the benchmark runs: `BenchmarkConfig`."""
import dataclasses


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    """What the benchmark runs; the defaults are the full model at 854 x 480.

    Attributes:
        width: the model's channel multiplier (1.0 = the paper's network).
        frame_size: `(W, H)` of the frames.
        repeats: timed runs per measurement (after one warm-up), interleaved.
        max_objects: object counts 1 .. max_objects are timed.
        io_frames: frames of the end-to-end `segment_to_folder` run.
        stream_frames, stream_size: the long stream that checks memory and
            retracing (smaller frames, so that 1000 of them take minutes).
        finetune_steps_timed, finetune_steps, video_frames: the one-shot
            fine-tuning comparison (paper: 1000 steps, a 70-frame video).
        precisions, xla: the precisions timed beside float32, and an XLA timing.
        matmul_size: side of the square matmul that measures the machine's FLOP/s.
        conv_shape: `(H, W, C)` of the 3x3, C -> C convolution that measures
            each data type's raw convolution rate (default: VGG16's block 3
            at 854x480).
        int8: also time and compare the INT8 per-frame network
            (`osmn_tf.quantization`, the `int8` extra), calibrated on
            `int8_calibration` synthetic frames for speed and on the trained
            model's first training videos for parity.
        trained_model: a `tools/train.py` run folder (`model.keras`,
            `train_config.json`, its synthetic `data/`): each precision's
            parity with float32 on its validation videos; None skips it.
    """

    width: float = 1.0
    frame_size: tuple = (854, 480)
    repeats: int = 5
    max_objects: int = 3
    io_frames: int = 16
    stream_frames: int = 1000
    stream_size: tuple = (128, 96)
    finetune_steps_timed: int = 20
    finetune_steps: int = 1000
    video_frames: int = 70
    precisions: tuple = ("mixed_bfloat16", "mixed_float16")
    xla: bool = True
    matmul_size: int = 2048
    conv_shape: tuple = (240, 427, 256)
    int8: bool = True
    int8_calibration: int = 8
    trained_model: str = None
    seed: int = 0

    @classmethod
    def quick(cls):
        """A smoke run of every measurement in well under a minute (numbers not meaningful)."""
        return cls(width=0.125, frame_size=(160, 96), repeats=2, io_frames=4, stream_frames=20,
                   stream_size=(64, 48), finetune_steps_timed=2, matmul_size=512, conv_shape=(48, 80, 32))
