"""TF Serving's configuration files for an export: `models.config` and `batching_parameters.txt`.

TF Serving's batching (`--enable_batching`) runs every signature of a model
through its batcher, which concatenates the inputs of concurrent requests
along dimension 0 and splits the outputs back. That fits the signatures whose
inputs and outputs all have the objects N first (`BATCHABLE_SIGNATURES`) and,
at one fixed frame size (the working size: the float clients send every
frame at it), lets requests of different videos and objects share one run.
The `_raw` and `_image` signatures take one frame per request (dimension 0 is
H, or a scalar): a batching server refuses them, so an export meant for it
warms up only the batchable signatures (`docs/serving.md`).
"""
import dataclasses


@dataclasses.dataclass
class BatchingParameters:
    """TF Serving's `BatchingParameters` (text format), sized for OSMN's per-object requests.

    Attributes:
        max_batch_size: objects in one run; `segment` at 854x480 holds about
            25 MB of activations per object in its largest layers.
        batch_timeout_micros: how long a request may wait for others to join.
        max_enqueued_batches: queued batches before the server answers UNAVAILABLE
            (which the clients retry).
        num_batch_threads: batches run in parallel (one per CPU socket or GPU).
        allowed_batch_sizes: sizes a batch is padded up to (fewer shapes to
            trace and allocate); the last must equal `max_batch_size`.
    """

    max_batch_size: int = 8
    batch_timeout_micros: int = 5000
    max_enqueued_batches: int = 16
    num_batch_threads: int = 2
    allowed_batch_sizes: tuple = (1, 2, 4, 8)

    def __post_init__(self):
        sizes = list(self.allowed_batch_sizes)
        if sizes and (sizes != sorted(set(sizes)) or sizes[-1] != self.max_batch_size):
            raise ValueError(f"allowed_batch_sizes {sizes} must increase and end with max_batch_size "
                             f"{self.max_batch_size}")

    def text(self):
        lines = [f"{field} {{ value: {getattr(self, field)} }}"
                 for field in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads")]
        lines += [f"allowed_batch_sizes: {size}" for size in self.allowed_batch_sizes]
        # Requests at another size than the working size are refused, not padded.
        lines.append("pad_variable_length_inputs: false")
        return "\n".join(lines) + "\n"


def models_config(name, base_path, versions=(1,), labels=None):
    """TF Serving's `ModelServerConfig` (text format) serving `versions` of one model.

    Args:
        name: the model name clients use (`/v1/models/<name>`, `model_spec.name`).
        base_path: the folder holding the numbered version folders, as the server sees it.
        versions: the versions kept loaded (`specific` policy): a new export is
            served only once listed, and two can run side by side.
        labels: `{label: version}`, e.g. `{"stable": 1}` (`model_spec.version_label`).
    """
    versions = [int(v) for v in versions]
    labels = dict(labels or {})
    unknown = {k: v for k, v in labels.items() if int(v) not in versions}
    if unknown:
        raise ValueError(f"version labels {unknown} name versions that are not served ({versions})")
    lines = ["model_config_list {", "  config {", f'    name: "{name}"', f'    base_path: "{base_path}"',
             '    model_platform: "tensorflow"', "    model_version_policy {", "      specific {"]
    lines += [f"        versions: {v}" for v in versions]
    lines += ["      }", "    }"]
    for label, version in labels.items():
        lines.append(f'    version_labels {{ key: "{label}" value: {int(version)} }}')
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"
