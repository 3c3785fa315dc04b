"""The benchmark's outputs: a text table, a JSON file and a PNG chart."""
import json

from osmn_tf.utils.atomic import atomic_output


def format_table(results):
    """The numbers a reader wants first, one per line, with each target's verdict."""
    config = results["config"]
    size = "x".join(str(v) for v in config["frame_size"])
    frame = results["per_frame_seconds"]
    objects = results["objects"]
    finetune = results["finetune"]
    stream = results["stream"]
    rows = [
        ("device", results["device"]),
        ("model", f"width {config['width']}, frames {size}"),
        ("per frame, 1 object: OSMN / bare FCN", f"{frame['osmn']:.3f} s / {frame['fcn']:.3f} s"),
        ("spatial guide (NumPy, per object)", f"{frame['spatial_guide'] * 1000:.1f} ms"),
        ("network FLOPs per frame", f"{results['network_gflops_per_frame']:.1f} GFLOP"),
        ("network / matmul FLOP/s (best runs)", f"{results['network_gflops_per_second']:.1f} / {results['matmul_gflops']:.1f} GFLOP/s"),
    ]
    for count, timing in objects.items():
        rows.append((f"{count} object(s): shared / per-object",
                     f"{timing['shared']:.3f} s / {timing['per_object']:.3f} s"
                     f" (masks identical: {timing['masks_identical']})"))
    rows += [
        ("time to first mask", f"{results['time_to_first_mask_seconds']:.1f} s"),
        ("peak RSS", f"{results['peak_rss_mb']:.0f} MiB"),
        (f"stream of {stream['frames']} frames at {'x'.join(map(str, stream['size']))}",
         f"RSS growth {stream['rss_growth_mb']:+.1f} MiB, {stream['traces']} trace(s)"),
        (f"{config['video_frames']}-frame video: fine-tuning {config['finetune_steps']} steps / OSMN",
         f"{finetune['finetune_video_seconds']:.0f} s / {finetune['osmn_video_seconds']:.1f} s "
         f"= {finetune['speedup']:.0f}x (step {finetune['step_seconds']:.2f} s, timed "
         f"{config['finetune_steps_timed']})"),
        ("CPU; bfloat16 instructions; auto picks", f"{results['cpu']}; {', '.join(results['cpu_bfloat16']) or 'none'}; "
                                                   f"{results['auto_precision']}"),
    ]
    count = config["max_objects"]
    for name, row in results["precision"].items():
        rows += [
            (f"{name}: per frame, 1 / {count} objects", f"{row['seconds_1_objects']:.3f} s / "
                                                        f"{row[f'seconds_{count}_objects']:.3f} s"),
            (f"{name}: end to end / network only", f"{row['end_to_end_frames_per_second']:.3f} / "
                                                   f"{row['network_frames_per_second']:.3f} frames/s "
                                                   f"(end to end {row['end_to_end_speedup']:.2f}x float32's)"),
            (f"{name}: network / matmul / conv GFLOP/s", f"{row['network_gflops_per_second']:.0f} / "
                                                         f"{_number(row['matmul_gflops'], '.0f')} / "
                                                         f"{_number(row['conv_gflops'], '.0f')}"),
            (f"{name}: speed-up / raw conv speed-up", f"{row['speedup']:.2f}x / "
                                                      f"{_number(row['raw_conv_speedup'], '.2f', 'x')} "
                                                      f"= {_number(row['speedup_of_raw'], '.2f')}"),
            (f"{name}: masks agree with float32", f"{100 * row['mask_agreement']:.2f}% (random weights)"),
        ]
    if "xla" in results:
        rows.append(("float32 with XLA: per frame", f"{results['xla']['seconds']:.3f} s (masks agree "
                                                    f"{100 * results['xla']['mask_agreement']:.2f}%)"))
    for name, row in results.get("trained_parity", {}).items():
        rows.append((f"{name}: trained model J&F-Mean, agreement", f"{row['j_and_f']:.4f} "
                     f"({row['j_and_f_difference']:+.4f}), masks agree {100 * row['mask_agreement']:.2f}%"))
    lines = [f"{name:<50} {value}" for name, value in rows]
    lines.append("")
    lines.append(f"{'target':<46} {'value':>10} {'limit':>10}  holds")
    for name, verdict in results["targets"].items():
        value = verdict["value"]
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        lines.append(f"{name:<46} {shown:>10} {verdict['limit']:>10}  {'yes' if verdict['holds'] else 'NO'}")
    return "\n".join(lines)


def _number(value, spec, unit=""):
    return "n/a" if value is None else format(value, spec) + unit


def write_json(results, path):
    with atomic_output(path, "w") as handle:
        json.dump(results, handle, indent=2, sort_keys=True, default=str)


def plot(results, path):
    """Frames/s against the number of objects (shared vs per-object), the time per frame by part, frames/s by precision."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    objects = results["objects"]
    counts = [int(c) for c in objects]
    figure, (left, right, by_precision) = plt.subplots(1, 3, figsize=(16, 4))
    for key, label in (("shared", "early layers shared"), ("per_object", "one copy per object")):
        left.plot(counts, [1 / objects[c][key] for c in objects], marker="o", label=label)
    left.set_xlabel("objects per frame")
    left.set_ylabel("frames / s (network)")
    left.set_xticks(counts)
    left.legend()
    left.set_title("Objects share the unmodulated layers")

    frame = results["per_frame_seconds"]
    parts = {
        "bare FCN": frame["fcn"],
        "modulation": max(frame["osmn"] - frame["fcn"], 0.0),
        "spatial guide": frame["spatial_guide"],
        "I/O not hidden": max(1 / results["end_to_end_frames_per_second"] - 1 / results["network_frames_per_second"],
                              0.0),
    }
    bottom = 0.0
    for name, seconds in parts.items():
        right.bar(["1 object, per frame"], [seconds], bottom=bottom, label=f"{name} ({seconds * 1000:.0f} ms)")
        bottom += seconds
    right.set_ylabel("seconds")
    right.legend(fontsize=8)
    right.set_title("Time per frame by stage (float32)")

    precisions = results["precision"]
    names = list(precisions)
    positions = range(len(names))
    for offset, key, label in ((-0.2, "network_frames_per_second", "network"),
                               (0.2, "end_to_end_frames_per_second", "end to end (JPEG in, PNG out)")):
        by_precision.bar([i + offset for i in positions], [precisions[n][key] for n in names], width=0.4, label=label)
    by_precision.set_xticks(list(positions), [n + (" (auto)" if n == results["auto_precision"] else "")
                                              for n in names], fontsize=8)
    by_precision.set_ylabel("frames / s, 1 object")
    by_precision.legend(fontsize=8)
    by_precision.set_title("Frames/s by precision")
    config = results["config"]
    figure.suptitle(f"OSMN width {config['width']}, {'x'.join(map(str, config['frame_size']))}, "
                    f"{results['device']} ({results['cpu']})")
    figure.tight_layout()
    with atomic_output(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)
    plt.close(figure)
